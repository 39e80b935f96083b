package harness

import (
	"fmt"
	"strconv"
	"strings"
)

// Status is a verdict's outcome.
type Status string

// Verdict statuses. A check that cannot be judged from the history (no
// server-side truth, no fd counts on this OS) is not applicable, never passed.
const (
	StatusPass          Status = "pass"
	StatusFail          Status = "fail"
	StatusNotApplicable Status = "not_applicable"
)

// Verdict is one check's judgement of one history.
type Verdict struct {
	Check    string  `json:"check"`
	Scenario string  `json:"scenario"`
	Seed     int64   `json:"seed"`
	Measured float64 `json:"measured"`
	Bound    float64 `json:"bound"`
	Unit     string  `json:"unit,omitempty"` // e.g. "goroutines", "fds", "connections"
	Status   Status  `json:"status"`
	Reason   string  `json:"reason"`
}

// String prints the verdict on one line with everything needed to replay
// it: status, check, scenario, seed, measured value and bound, and why.
func (v Verdict) String() string {
	unit := ""
	if v.Unit != "" {
		unit = " " + v.Unit
	}
	return fmt.Sprintf("%s %s scenario=%s seed=%d measured=%s%s bound=%s%s: %s",
		strings.ToUpper(string(v.Status)), v.Check, v.Scenario, v.Seed,
		formatNumber(v.Measured), unit, formatNumber(v.Bound), unit, v.Reason)
}

// Passed reports a pass.
func (v Verdict) Passed() bool { return v.Status == StatusPass }

func formatNumber(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// Check judges a history. Judge must use only the history, so that a
// verdict can be recomputed from a saved history.
type Check interface {
	ID() string
	Judge(h *History) Verdict
}

// Judge runs every check on h.
func Judge(h *History, checks ...Check) []Verdict {
	out := make([]Verdict, 0, len(checks))
	for _, c := range checks {
		out = append(out, c.Judge(h))
	}
	return out
}

// NewVerdict starts the verdict of check id on h; Pass, Fail or
// NotApplicable completes it.
func NewVerdict(id string, h *History, unit string) Verdict {
	return Verdict{Check: id, Scenario: h.Scenario, Seed: h.Seed, Unit: unit}
}

// Pass returns v judged passed.
func (v Verdict) Pass(measured, bound float64, reason string) Verdict {
	v.Status, v.Measured, v.Bound, v.Reason = StatusPass, measured, bound, reason
	return v
}

// Fail returns v judged failed.
func (v Verdict) Fail(measured, bound float64, reason string) Verdict {
	v.Status, v.Measured, v.Bound, v.Reason = StatusFail, measured, bound, reason
	return v
}

// NotApplicable returns v judged not applicable: the history cannot say.
func (v Verdict) NotApplicable(reason string) Verdict {
	v.Status, v.Reason = StatusNotApplicable, reason
	return v
}
