package env

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcessExists(t *testing.T) {
	assert.True(t, processExists(os.Getpid()))

	// A killed child not yet waited for is a zombie: gone for reaping.
	child := exec.Command("sleep", "60")
	require.NoError(t, child.Start())
	pid := child.Process.Pid
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	assert.True(t, processExists(pid))
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	require.Eventually(t, func() bool { return !processExists(pid) }, 5*time.Second, 10*time.Millisecond,
		"a killed, unwaited child counts as gone")
	_ = child.Wait() // reaped: the PID is free
	assert.False(t, processExists(pid))
}

func TestRunPID(t *testing.T) {
	pid, ok := runPID("21074-dn3hhlpadw8j")
	assert.True(t, ok)
	assert.Equal(t, 21074, pid)
	for _, bad := range []string{"", "abc-1", "-1", "0-x", "12"} {
		_, ok := runPID(bad)
		assert.False(t, ok, "%q", bad)
	}
}
