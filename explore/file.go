package explore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// MarshalFile writes s as a scenario file harness.ParseScenarios reads
// back unchanged: each line of comment as a leading "# " line, then the
// scenario in the shape harness.MarshalScenarios writes (JSON, which is
// YAML too, so the comment is allowed: name the file .yaml).
func MarshalFile(s harness.Scenario, comment ...string) ([]byte, error) {
	body, err := harness.MarshalScenarios([]harness.Scenario{s})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, c := range comment {
		for _, line := range strings.Split(c, "\n") {
			b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
		}
	}
	b.Write(body)
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// WriteFile writes s to path as MarshalFile does.
func WriteFile(path string, s harness.Scenario, comment ...string) error {
	b, err := MarshalFile(s, comment...)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// LoadCase reads what "poolproof shrink" accepts: a scenario file (its
// scenarios) or a saved history (.json or .json.gz from a report's
// histories/), turned back into the scenario that ran, with its seed and
// checks.
func LoadCase(path string) ([]harness.Scenario, error) {
	if !strings.HasSuffix(path, ".json.gz") && !isHistoryJSON(path) {
		return harness.LoadScenarios(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := harness.LoadHistory(f) // it reads gzip too
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := ScenarioOf(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return []harness.Scenario{s}, nil
}

// isHistoryJSON tells a saved history (it has "calls") from a scenario file.
func isHistoryJSON(path string) bool {
	if !strings.HasSuffix(path, ".json") {
		return false
	}
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(`"calls"`)) && bytes.Contains(b, []byte(`"request_id_prefix"`))
}

// ScenarioOf rebuilds the scenario a history recorded: its workload, its
// steps as they were scheduled (windows already fitted to the contract),
// its checks and its seed. A run of HTTP/2 is pinned to it.
func ScenarioOf(h *harness.History) (harness.Scenario, error) {
	if len(h.Checks) == 0 {
		return harness.Scenario{}, errors.New("the history names no checks (it was not saved by certify): shrink its scenario file instead")
	}
	name, _, _ := strings.Cut(h.Scenario, "@")
	s := harness.Scenario{
		Name: name, Family: h.Family, Proves: h.Proves, Seed: h.Seed,
		Workload: h.Workload, Checks: h.Checks,
	}
	if h.Protocol == harness.ProtocolHTTP2 {
		s.Protocol = harness.ProtocolHTTP2
	}
	for _, st := range h.Steps {
		s.Steps = append(s.Steps, st.Step)
	}
	if s.Proves == "" {
		s.Proves = "the run saved in a history"
	}
	if err := s.Validate(); err != nil {
		return harness.Scenario{}, err
	}
	return s, nil
}

// Sentence says what a shrunk failure is, in one line a person reads
// before the file: the client, the check and its reason, the faults left,
// how long, how many callers.
func Sentence(client string, res ShrinkResult) string {
	reason := "it fails"
	if v, ok := res.Last.Verdict(res.Check); ok && v.Reason != "" {
		reason = v.Reason
	}
	var faults []string
	for _, g := range faultGroups(res.Shrunk.Steps) {
		faults = append(faults, DescribeFault(res.Shrunk.Steps, g))
	}
	what := "no fault"
	if len(faults) > 0 {
		what = strings.Join(faults, " + ")
	}
	w := res.Shrunk.Workload
	load := fmt.Sprintf("%d workers", w.Workers)
	if w.Mode == harness.OpenLoop {
		load = fmt.Sprintf("an open loop of %v calls/s (%d in flight)", w.Rate, w.MaxInFlight)
	}
	if w.ThinkTime > 0 {
		load += fmt.Sprintf(" thinking %v", w.ThinkTime)
	}
	if w.Caller.CancelShare > 0 || w.Caller.DeadlineShare > 0 {
		load += " whose callers give up"
	}
	return fmt.Sprintf("client %s fails %s with %s: %d steps, %v, %s (%s)",
		client, res.Check, what, len(res.Shrunk.Steps), w.Duration.Round(100*time.Millisecond), load, reason)
}

// DescribeFault says what the steps of one fault group do, from their
// actions (labels may be stale after a shrink): the fault, its service and
// its window.
func DescribeFault(steps []harness.Step, group []int) string {
	var parts []string
	for _, i := range group {
		if d := describeAction(steps[i].Action); d != "" {
			parts = append(parts, d)
		}
	}
	on, off := steps[group[0]], steps[group[len(group)-1]]
	text := strings.Join(parts, ", ")
	if off.At > on.At {
		return fmt.Sprintf("%s from %v for %v", text, on.At, off.At-on.At)
	}
	return fmt.Sprintf("%s from %v", text, on.At)
}

// describeAction says what a fault's "on" action does; "" for the steps
// that end one.
func describeAction(a harness.Action) string {
	switch a.Kind {
	case harness.ActionAddToxic:
		t := a.Toxic
		var attrs []string
		for _, k := range harness.ToxicAttributes[t.Type] {
			if v, ok := t.Attributes[k]; ok {
				attrs = append(attrs, fmt.Sprintf("%s %v", k, v))
			}
		}
		name := t.Type + " toxic"
		if n, ok := t.Attributes["timeout"].(int64); ok && n == 0 && t.Type == harness.ToxicTimeout {
			name = "blackhole (timeout toxic)" // nothing passes, nothing closes
		}
		return fmt.Sprintf("%s on %s (%s, %s, toxicity %.2f)", name, a.Service, t.Stream, strings.Join(attrs, " "), t.Toxicity)
	case harness.ActionSetHTTPFaults:
		var fs []string
		for _, f := range a.HTTPFaults {
			d := f.Kind
			switch {
			case f.Status != 0 && f.RetryAfter != "":
				d = fmt.Sprintf("%s %d Retry-After %s", f.Kind, f.Status, f.RetryAfter)
			case f.Status != 0:
				d = fmt.Sprintf("%s %d", f.Kind, f.Status)
			case f.Delay > 0:
				d = fmt.Sprintf("%s %v", f.Kind, f.Delay.Std())
			case f.BytesPerSecond > 0:
				d = fmt.Sprintf("%s %d B/s", f.Kind, f.BytesPerSecond)
			case f.CutAfterBytes > 0:
				d = fmt.Sprintf("%s after %d bytes", f.Kind, f.CutAfterBytes)
			}
			if f.Then != "" {
				d += " then " + f.Then
			}
			if f.Probability > 0 && f.Probability < 1 {
				d += fmt.Sprintf(" on %.0f%%", f.Probability*100)
			}
			fs = append(fs, d)
		}
		return a.Service + " answers " + strings.Join(fs, " and ")
	case harness.ActionDisableProxy:
		return a.Service + " down"
	case harness.ActionSetKeepAlive:
		ka := a.KeepAlive
		switch {
		case ka.IdleTimeout > 0:
			return fmt.Sprintf("%s closes connections idle %v", a.Service, ka.IdleTimeout.Std())
		case ka.MaxRequestsPerConn > 0:
			return fmt.Sprintf("%s closes a connection after %d requests", a.Service, ka.MaxRequestsPerConn)
		}
		return a.Service + " keep-alive changed"
	case harness.ActionSetProtocol:
		return a.Service + " offers " + a.Protocol
	}
	return ""
}
