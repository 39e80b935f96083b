package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Outcome of a charge call as the client could know it, in the manner of a
// Jepsen history: ok and fail are definite, info is indeterminate.
const (
	chargeOK   = "ok"
	chargeFail = "fail"
	chargeInfo = "info"
)

// classifyCharge says what a charge call's caller can know: ok (a 2xx),
// fail (a 4xx, or a local rejection that never left the client), info
// (anything else: a timeout, a reset, a 5xx; the charge may or may not have
// been made).
func classifyCharge(c harness.CallRecord) string {
	switch {
	case c.Class == harness.ClassNone && c.Status >= 200 && c.Status < 300:
		return chargeOK
	case c.Class == harness.ClassNone && c.Status >= 400 && c.Status < 500,
		c.Class == harness.ClassPoolExhausted, c.Class == harness.ClassCircuitOpen:
		return chargeFail
	}
	return chargeInfo
}

// Ledger is a payment ledger check in the manner of Jepsen: every
// create_charge call is classified by what the client could know (see
// classifyCharge) and the payment server's charges per order must agree:
//
//   - a call reported ok was charged exactly once;
//   - a call the client rejected locally (pool exhausted, circuit open)
//     was not charged: it never reached the server, or (a retry refused
//     after earlier attempts) none of its attempts was charged;
//   - no order was charged more than once, whatever the client reported.
//
// Behind a reverse proxy the payment replicas' charges count together: an
// order the proxy sent to two replicas is charged twice.
//
// An indeterminate call may have been charged once or not at all. Measured
// is the number of violations; the reason names the first (lowest call
// number) and what happened to it.
type Ledger struct{}

func (Ledger) ID() string { return IDLedgerNoDuplicate }

func (c Ledger) Judge(h *harness.History) harness.Verdict {
	v := harness.NewVerdict(c.ID(), h, "violations")
	st, ok := requestTruth(h, fakeservers.Payment)
	if !ok {
		return v.NotApplicable("no server-side truth from payment: the charges per order could not be read; give the environment payment's admin URL (POOLPROOF_ADMIN_PAYMENT)")
	}
	attempts, _ := serverAttempts(h, fakeservers.Payment)
	perSeq := make(map[uint32]int, len(attempts))
	for _, a := range attempts {
		perSeq[a.Seq]++
	}
	type violation struct {
		seq  uint32
		what string
	}
	var (
		violations []violation
		charges    int
		counts     = map[string]int{}
		calledSeq  = map[uint32]bool{}
	)
	for i := range h.Calls {
		cl := h.Calls[i]
		if cl.Op != harness.OpCreateCharge {
			continue
		}
		charges++
		calledSeq[cl.Seq] = true
		kind := classifyCharge(cl)
		counts[kind]++
		order := h.OrderID(cl.Seq)
		n := st.Charges[order]
		switch {
		case n > 1:
			violations = append(violations, violation{cl.Seq, fmt.Sprintf("order %s (request id %s) was charged %d times; the client saw %s: a retried charge the server had already processed was processed again: send an Idempotency-Key, or do not retry a non-idempotent POST that may have reached the server",
				order, h.RequestID(cl.Seq), n, describeCharge(h, cl))})
		case kind == chargeOK && n != 1:
			violations = append(violations, violation{cl.Seq, fmt.Sprintf("order %s (request id %s): the client reported success (%d) but the server holds %d charges for it: a success was returned for a charge that was never made",
				order, h.RequestID(cl.Seq), cl.Status, n)})
		case kind == chargeFail && cl.Class != harness.ClassNone && perSeq[cl.Seq] > 0 && n > 0:
			// A retry the breaker or the pool refused ends its call with
			// that refusal after earlier attempts reached the server: true
			// as long as none of them was charged (they failed).
			violations = append(violations, violation{cl.Seq, fmt.Sprintf("request id %s (order %s) failed locally with %s but the server saw %d attempts of it and charged the order: a call rejected by the pool or breaker must not have sent anything, or must not report a local rejection",
				h.RequestID(cl.Seq), order, cl.Class, perSeq[cl.Seq])})
		}
	}
	// Orders charged twice whose call is not in the history (e.g. its record
	// was lost) still count.
	orders := make([]string, 0, len(st.Charges))
	for o, n := range st.Charges {
		if n > 1 {
			orders = append(orders, o)
		}
	}
	slices.Sort(orders)
	prefix := h.RequestIDPrefix + "-order-"
	for _, o := range orders {
		rest, ok := strings.CutPrefix(o, prefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(rest, 10, 32)
		seq := uint32(n)
		if err != nil || calledSeq[seq] {
			continue
		}
		violations = append(violations, violation{seq, fmt.Sprintf("order %s was charged %d times: send an Idempotency-Key, or do not retry a non-idempotent POST that may have reached the server", o, st.Charges[o])})
	}
	if charges == 0 {
		return v.NotApplicable("no create_charge call was made")
	}
	summary := fmt.Sprintf("%d charge calls: %d ok, %d fail, %d info", charges, counts[chargeOK], counts[chargeFail], counts[chargeInfo])
	if len(violations) == 0 {
		return v.Pass(0, 0, summary+"; every order charged at most once and every reported success exactly once")
	}
	slices.SortStableFunc(violations, func(a, b violation) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return v.Fail(float64(len(violations)), 0, fmt.Sprintf("%d ledger violations (%s); first: %s", len(violations), summary, violations[0].what))
}

func describeCharge(h *harness.History, c harness.CallRecord) string {
	switch {
	case c.Class == harness.ClassNone:
		return fmt.Sprintf("status %d", c.Status)
	case h.ErrorText(c) != "":
		return fmt.Sprintf("%s (%s)", c.Class, h.ErrorText(c))
	}
	return c.Class.String()
}
