package check

import (
	"github.com/poolproof/poolproof/harness"
	"testing"
	"time"
)

func TestIntegrityDigestCheck(t *testing.T) {
	cases := []checkCase{
		{"all bodies verified", IntegrityDigest{}, func() *harness.History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			return b.done()
		}, harness.StatusPass, []string{"all 100 2xx bodies matched"}},
		{"a truncated body handed back as a success", IntegrityDigest{}, func() *harness.History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			b.h.Calls[42].Digest = harness.DigestMismatch
			b.h.Calls[42].Bytes = 17
			return b.done()
		}, harness.StatusFail, []string{"1 of 100 2xx bodies did not match", "request id pp-synthetic-7-42", "17 bytes"}},
		{"no digests", IntegrityDigest{}, func() *harness.History {
			b := newHB()
			b.okCalls("inventory", 0, time.Second, 10*time.Millisecond, time.Millisecond, false, 0)
			for i := range b.h.Calls {
				b.h.Calls[i].Digest = harness.DigestAbsent
			}
			return b.done()
		}, harness.StatusNotApplicable, []string{"no 2xx body carrying a digest"}},
	}
	runCheckCases(t, cases)
}
