//go:build linux

package harness

import (
	"math"
	"sync"
	"syscall"
)

var fdLimitOnce sync.Once

// raiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit, once per
// process. A leaky client (a new client per call) holds thousands of
// descriptors before its run is stopped at the ceiling (see WithFDCeiling),
// and in the embedded environment every one of its connections costs four
// in this process (the client's socket, Toxiproxy's two, the server's);
// the harness itself still needs descriptors to tear down, observe, reset
// and write the report afterwards. Go already raises the soft limit to one
// below the hard limit at start-up (go.dev/issue/46279) and gives child
// processes the original back; this only acts when the soft limit is below
// that, because something lowered it since (prlimit from outside, a test
// helper), so it neither touches a limit Go set nor what children inherit
// in the usual case.
func raiseFDLimit() {
	fdLimitOnce.Do(func() {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max == 0 || lim.Cur+1 >= lim.Max {
			return
		}
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // not allowed: the run's ceiling follows the limit it has
	})
}

// fdLimit is the soft RLIMIT_NOFILE: the descriptors this process may hold.
func fdLimit() (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == 0 {
		return 0, false
	}
	return int(min(lim.Cur, math.MaxInt32)), true
}
