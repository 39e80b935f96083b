// Package cpuload reads the CPU time the whole machine and this process
// have used, so that a check measuring throughput can tell a client that
// slowed down from a machine whose other processes took the CPU: on a
// 2-core CI runner a compiler starting beside a run halves its calls per
// second, whatever the client does.
package cpuload

import (
	"runtime"

	"github.com/prometheus/procfs"
)

// Reading is cumulative CPU time, in milliseconds, since boot (Busy: every
// CPU's non-idle time) and since this process started (Self).
type Reading struct {
	BusyMs int64
	SelfMs int64
}

// Reader reads /proc through procfs; its zero value is unusable, make one
// with NewReader.
type Reader struct {
	fs procfs.FS
}

// NewReader returns a reader, or false where /proc cannot be read (not
// Linux): the samples then carry no CPU time and nothing is adjusted.
func NewReader() (*Reader, bool) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, false
	}
	r := &Reader{fs: fs}
	if _, ok := r.Read(); !ok {
		return nil, false
	}
	return r, true
}

// Read takes one reading; false when /proc could not be read.
func (r *Reader) Read() (Reading, bool) {
	st, err := r.fs.Stat()
	if err != nil {
		return Reading{}, false
	}
	self, err := r.fs.Self()
	if err != nil {
		return Reading{}, false
	}
	ps, err := self.Stat()
	if err != nil {
		return Reading{}, false
	}
	c := st.CPUTotal
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return Reading{BusyMs: int64(busy * 1000), SelfMs: int64(ps.CPUTime() * 1000)}, true
}

// CPUs is the number of CPUs the machine's busy time is spread over.
func CPUs() int { return runtime.NumCPU() }

// Shares are the shares of the machine's CPU capacity (wall x cpus) that
// this process (self) and the other processes (others) used between two
// readings wall apart, each in [0, 1]. ok is false when the readings
// cannot say (no time passed, a counter went back).
func Shares(from, to Reading, wallMs int64, cpus int) (self, others float64, ok bool) {
	if wallMs <= 0 || cpus <= 0 || to.BusyMs < from.BusyMs || to.SelfMs < from.SelfMs {
		return 0, 0, false
	}
	capacity := float64(wallMs * int64(cpus))
	selfMs := float64(to.SelfMs - from.SelfMs)
	othersMs := float64(to.BusyMs-from.BusyMs) - selfMs
	clamp := func(f float64) float64 { return min(max(f, 0), 1) }
	return clamp(selfMs / capacity), clamp(othersMs / capacity), true
}
