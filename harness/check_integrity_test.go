package harness

import (
	"testing"
	"time"
)

func TestIntegrityDigestCheck(t *testing.T) {
	cases := []checkCase{
		{"all bodies verified", IntegrityDigestCheck{}, func() *History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			return b.done()
		}, StatusPass, []string{"all 100 2xx bodies matched"}},
		{"a truncated body handed back as a success", IntegrityDigestCheck{}, func() *History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			b.h.Calls[42].Digest = DigestMismatch
			b.h.Calls[42].Bytes = 17
			return b.done()
		}, StatusFail, []string{"1 of 100 2xx bodies did not match", "request id pp-synthetic-7-42", "17 bytes"}},
		{"no digests", IntegrityDigestCheck{}, func() *History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			for i := range b.h.Calls {
				b.h.Calls[i].Digest = DigestAbsent
			}
			return b.done()
		}, StatusNotApplicable, []string{"no 2xx body carrying a digest"}},
	}
	runCheckCases(t, cases)
}
