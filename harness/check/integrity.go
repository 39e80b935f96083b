package check

import (
	"fmt"
	"github.com/poolproof/poolproof/harness"
)

// IntegrityDigest fails when a 2xx body the client handed back did not
// match the X-Body-Digest the server sent: the client returned corrupted or
// truncated data as a success (e.g. a reused buffer, a body cut by a reset
// and not reported). Not applicable when no body with a digest was read.
type IntegrityDigest struct{}

func (IntegrityDigest) ID() string { return IDIntegrityDigest }

func (c IntegrityDigest) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "bodies")
	var (
		verified, bad int
		first         *harness.CallRecord
	)
	for i := range h.Calls {
		cl := &h.Calls[i]
		if cl.Status < 200 || cl.Status >= 300 {
			continue
		}
		switch cl.Digest {
		case harness.DigestOK:
			verified++
		case harness.DigestMismatch:
			verified++
			bad++
			if first == nil || cl.Seq < first.Seq {
				first = cl
			}
		}
	}
	if verified == 0 {
		return v.NotApplicable("no 2xx body carrying a digest was read")
	}
	if bad == 0 {
		return v.Pass(0, 0, fmt.Sprintf("all %d 2xx bodies matched their digest", verified))
	}
	return v.Fail(float64(bad), 0, fmt.Sprintf("%d of %d 2xx bodies did not match their digest, first %s (%d bytes): the client handed back corrupted or truncated data as a success; return an error when the body is cut short and never share buffers between calls",
		bad, verified, callName(h, *first), first.Bytes))
}
