package cpuload

import (
	"crypto/sha256"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestShares(t *testing.T) {
	from := Reading{BusyMs: 10_000, SelfMs: 2_000}
	self, others, ok := Shares(from, Reading{BusyMs: 11_500, SelfMs: 2_500}, 1000, 2)
	require.True(t, ok)
	assert.InDelta(t, 0.25, self, 1e-9, "500ms of ours over 1s of 2 CPUs")
	assert.InDelta(t, 0.5, others, 1e-9, "1000ms of others' CPU over 1s of 2 CPUs")
	_, others, ok = Shares(from, Reading{BusyMs: 10_100, SelfMs: 2_100}, 1000, 2)
	require.True(t, ok)
	assert.Zero(t, others)
	_, _, ok = Shares(from, from, 0, 2)
	assert.False(t, ok, "no time passed")
	_, _, ok = Shares(from, Reading{BusyMs: 9_000, SelfMs: 2_000}, 1000, 2)
	assert.False(t, ok, "a counter went back")
}

// Work done here counts as this process's; a busy child process counts as
// another's.
func TestReadTellsSelfFromOthers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	r, ok := NewReader()
	require.True(t, ok)
	before, ok := r.Read()
	require.True(t, ok)
	sum := [32]byte{}
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		sum = sha256.Sum256(sum[:])
	}
	mid, ok := r.Read()
	require.True(t, ok)
	assert.GreaterOrEqual(t, mid.SelfMs-before.SelfMs, int64(100), "300ms of hashing is this process's CPU")

	cmd := exec.Command("sh", "-c", "end=$(($(date +%s)+1)); while [ $(date +%s) -lt $end ]; do :; done")
	start := time.Now()
	require.NoError(t, cmd.Run())
	after, ok := r.Read()
	require.True(t, ok)
	assert.Less(t, after.SelfMs-mid.SelfMs, int64(200), "the child's spin is not ours")
	_, share, ok := Shares(mid, after, time.Since(start).Milliseconds(), CPUs())
	require.True(t, ok)
	assert.Greater(t, share, 0.1/float64(CPUs()), "a spinning child shows as others' CPU")
}
