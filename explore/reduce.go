package explore

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// Size is how big a case is, as a shrink reports it before and after.
type Size struct {
	Faults   int           `json:"faults"` // fault groups: the steps that switch one fault on and off
	Steps    int           `json:"steps"`
	Duration time.Duration `json:"duration"`
	Callers  int           `json:"callers"` // workers, or the open loop's in-flight cap
	Checks   int           `json:"checks"`
}

func (z Size) String() string {
	return fmt.Sprintf("%d faults (%d steps), %v, %d callers", z.Faults, z.Steps, z.Duration, z.Callers)
}

// SizeOf measures s.
func SizeOf(s harness.Scenario) Size {
	return Size{Faults: len(faultGroups(s.Steps)), Steps: len(s.Steps), Duration: s.Workload.Duration, Callers: s.Workload.Callers(), Checks: len(s.Checks)}
}

// faultGroups splits a schedule into faults: each step that switches a
// fault on, with the steps that switch it off later (same service, same
// toxic or the same HTTP faults or proxy); steps on one service at the
// same offset join one fault (a hang is a toxic and a proxy restart at
// once). Each group lists step indexes, in order.
func faultGroups(steps []harness.Step) [][]int {
	parent := make([]int, len(steps))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) { parent[find(b)] = find(a) }
	for i, st := range steps {
		if !switchesOn(st.Action) {
			// An "off" step joins the latest earlier "on" step of its key.
			for j := i - 1; j >= 0; j-- {
				if switchesOn(steps[j].Action) && resourceKey(steps[j].Action) == resourceKey(st.Action) {
					union(j, i)
					break
				}
			}
			continue
		}
		for j := range i {
			if switchesOn(steps[j].Action) && steps[j].At == st.At && steps[j].Action.Service == st.Action.Service {
				union(j, i)
			}
		}
	}
	// The enable_proxy of a hang is an "off" step at the same offset as its
	// disable: it joined above. Collect the groups in order of their first step.
	byRoot := map[int][]int{}
	var roots []int
	for i := range steps {
		r := find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	out := make([][]int, 0, len(roots))
	for _, r := range roots {
		out = append(out, byRoot[r])
	}
	return out
}

func switchesOn(a harness.Action) bool {
	switch a.Kind {
	case harness.ActionRemoveToxic, harness.ActionEnableProxy, harness.ActionClearHTTPFaults:
		return false
	}
	return true
}

// resourceKey names what an action switches on a service.
func resourceKey(a harness.Action) string {
	switch a.Kind {
	case harness.ActionAddToxic:
		if a.Toxic != nil {
			return a.Service + "/toxic/" + a.Toxic.Name
		}
	case harness.ActionRemoveToxic:
		return a.Service + "/toxic/" + a.ToxicName
	case harness.ActionSetHTTPFaults, harness.ActionClearHTTPFaults:
		return a.Service + "/http"
	case harness.ActionDisableProxy, harness.ActionEnableProxy:
		return a.Service + "/proxy"
	}
	return a.Service + "/" + a.Kind
}

// callersWait describes the reduction that lifts the callers' limits.
const callersWait = "callers wait for every call"

// candidate is one reduction of a scenario, with what it did.
type candidate struct {
	what string
	s    harness.Scenario
}

// reductions lists the reductions of s to try, in order: fewer checks,
// fewer faults, a shorter workload, fewer services, shorter windows,
// milder faults, fewer callers, a lower rate, callers without limits, no
// think time. Only valid scenarios that
// still hold the check keep are listed. A shorter workload comes early
// because it makes every later rerun cheaper.
func reductions(s harness.Scenario, keep string) []candidate {
	var out []candidate
	addIf := func(what string, c harness.Scenario) {
		if c.Validate() != nil || !slices.Contains(c.CheckIDs(), keep) || reflect.DeepEqual(c, s) {
			return
		}
		out = append(out, candidate{what: what, s: c})
	}
	if len(s.Checks) > 1 {
		c := clone(s)
		c.Checks = slices.DeleteFunc(c.Checks, func(ch harness.Check) bool { return ch.ID() != keep })
		addIf("only "+keep+" judged", c)
	}
	groups := faultGroups(s.Steps)
	for gi := len(groups) - 1; gi >= 0; gi-- {
		c := clone(s)
		c.Steps = dropSteps(s.Steps, groups[gi])
		addIf("without "+describeGroup(s.Steps, groups[gi]), c)
	}
	for _, frac := range []float64{0, 0.5, 0.75} { // 0: as short as the steps allow
		c := clone(s)
		end := lastStepAt(s.Steps)
		d := max(roundTo(time.Duration(float64(s.Workload.Duration)*frac), 100*time.Millisecond), end+200*time.Millisecond, time.Second)
		if d < s.Workload.Duration {
			c.Workload.Duration = d
			c.Stretch = clampStretch(c.Stretch, d)
			addIf(fmt.Sprintf("workload %v instead of %v", d, s.Workload.Duration), c)
		}
	}
	for _, svc := range fakeservers.Services {
		if c, ok := withoutService(s, svc); ok {
			addIf("without "+svc, c)
		}
	}
	for _, g := range groups {
		on, off := g[0], g[len(g)-1]
		if on == off || s.Steps[off].At <= s.Steps[on].At {
			continue
		}
		length := s.Steps[off].At - s.Steps[on].At
		for _, frac := range []float64{0, 0.5, 0.75} { // 0: the shortest window, 100ms
			short := max(100*time.Millisecond, roundTo(time.Duration(float64(length)*frac), 100*time.Millisecond))
			if short >= length {
				continue
			}
			c := clone(s)
			for _, i := range g {
				if c.Steps[i].At == s.Steps[off].At && !switchesOn(c.Steps[i].Action) {
					c.Steps[i].At = s.Steps[on].At + short
				}
			}
			slices.SortStableFunc(c.Steps, func(a, b harness.Step) int { return cmp.Compare(a.At, b.At) })
			addIf(fmt.Sprintf("%s for %v instead of %v", describeGroup(s.Steps, g), short, length), c)
		}
	}
	for i, st := range s.Steps {
		for _, m := range milder(st.Action) {
			c := clone(s)
			c.Steps[i].Action = m.action
			c.Steps[i].Label = st.Label + " (" + m.what + ")"
			addIf(fmt.Sprintf("step %q %s", st.Label, m.what), c)
		}
	}
	w := s.Workload
	if w.Mode == harness.OpenLoop {
		for _, frac := range []float64{0.5, 0.75} {
			c := clone(s)
			c.Workload.Rate = float64(int(w.Rate * frac))
			c.Workload.MaxInFlight = max(1, int(float64(w.MaxInFlight)*frac))
			addIf(fmt.Sprintf("rate %v calls/s, %d in flight, instead of %v, %d", c.Workload.Rate, c.Workload.MaxInFlight, w.Rate, w.MaxInFlight), c)
		}
	} else {
		for _, n := range []int{1, w.Workers / 2, w.Workers * 3 / 4, w.Workers - 1} {
			if n >= 1 && n < w.Workers {
				c := clone(s)
				c.Workload.Workers = n
				addIf(fmt.Sprintf("%d workers instead of %d", n, w.Workers), c)
			}
		}
	}
	if w.Caller != (harness.CallerLimits{}) {
		c := clone(s)
		c.Workload.Caller = harness.CallerLimits{}
		addIf(callersWait, c)
	}
	if w.ThinkTime > 0 {
		c := clone(s)
		c.Workload.ThinkTime = 0
		addIf(fmt.Sprintf("no think time instead of %v", w.ThinkTime), c)
	}
	return dedupe(out)
}

func dedupe(cs []candidate) []candidate {
	var out []candidate
	for _, c := range cs {
		if !slices.ContainsFunc(out, func(o candidate) bool { return reflect.DeepEqual(o.s, c.s) }) {
			out = append(out, c)
		}
	}
	return out
}

// clone copies s deeply enough that a reduction never changes s.
func clone(s harness.Scenario) harness.Scenario {
	c := s
	c.Steps = slices.Clone(s.Steps)
	for i := range c.Steps {
		c.Steps[i].Action = cloneAction(c.Steps[i].Action)
	}
	c.Stretch = slices.Clone(s.Stretch)
	c.Checks = slices.Clone(s.Checks)
	return c
}

func cloneAction(a harness.Action) harness.Action {
	if a.Toxic != nil {
		t := *a.Toxic
		t.Attributes = make(map[string]any, len(a.Toxic.Attributes))
		for k, v := range a.Toxic.Attributes {
			t.Attributes[k] = v
		}
		a.Toxic = &t
	}
	a.HTTPFaults = slices.Clone(a.HTTPFaults)
	if a.KeepAlive != nil {
		ka := *a.KeepAlive
		a.KeepAlive = &ka
	}
	return a
}

func dropSteps(steps []harness.Step, idx []int) []harness.Step {
	var out []harness.Step
	for i, st := range steps {
		if !slices.Contains(idx, i) {
			out = append(out, st)
		}
	}
	return out
}

func lastStepAt(steps []harness.Step) time.Duration {
	var end time.Duration
	for _, st := range steps {
		end = max(end, st.At)
	}
	return end
}

func clampStretch(st []harness.Stretch, d time.Duration) []harness.Stretch {
	var out []harness.Stretch
	for _, x := range st {
		x.Until = min(x.Until, d)
		if x.From < x.Until {
			out = append(out, x)
		}
	}
	return out
}

func describeGroup(steps []harness.Step, g []int) string {
	st := steps[g[0]]
	if st.Label != "" {
		return fmt.Sprintf("%q", st.Label)
	}
	return st.Action.Kind + " on " + st.Action.Service
}

// withoutService drops svc from the mix, with its steps and the checks
// scoped to it; false when svc is not driven or is the only one.
func withoutService(s harness.Scenario, svc string) (harness.Scenario, bool) {
	m := s.Workload.Mix
	weight := map[string]*int{fakeservers.Inventory: &m.Inventory, fakeservers.Payment: &m.Payment, fakeservers.Notification: &m.Notification}
	if *weight[svc] == 0 || m.Inventory+m.Payment+m.Notification == *weight[svc] {
		return s, false
	}
	*weight[svc] = 0
	c := clone(s)
	c.Workload.Mix = m
	c.Steps = slices.DeleteFunc(c.Steps, func(st harness.Step) bool { return st.Action.Service == svc })
	c.Checks = slices.DeleteFunc(c.Checks, func(ch harness.Check) bool { return scopedTo(ch) == svc })
	return c, true
}

// scopedTo is the service a check's Service (or Down) field names, "" for
// every service.
func scopedTo(c harness.Check) string {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Struct {
		return ""
	}
	for _, name := range []string{"Service", "Down"} {
		if f := v.FieldByName(name); f.IsValid() && f.Kind() == reflect.String {
			return f.String()
		}
	}
	return ""
}

type mildAction struct {
	what   string
	action harness.Action
}

// milder lists softer versions of a: one parameter at a time, halved
// towards harmless (less latency, a lower toxicity or probability, a
// faster trickle, a later cut).
func milder(a harness.Action) []mildAction {
	var out []mildAction
	switch a.Kind {
	case harness.ActionAddToxic:
		t := a.Toxic
		if t.Toxicity > 0.1 {
			c := cloneAction(a)
			c.Toxic.Toxicity = float32(int(t.Toxicity*50+0.5)) / 100 // halved, rounded to 0.01
			out = append(out, mildAction{fmt.Sprintf("toxicity %.2f", c.Toxic.Toxicity), c})
		}
		for _, attr := range []string{"latency", "jitter", "delay", "timeout"} {
			n, ok := t.Attributes[attr].(int64)
			if !ok || n <= 1 {
				continue
			}
			c := cloneAction(a)
			c.Toxic.Attributes[attr] = n / 2
			out = append(out, mildAction{fmt.Sprintf("%s %d", attr, n/2), c})
		}
		for _, attr := range []string{"rate", "bytes", "average_size"} {
			if n, ok := t.Attributes[attr].(int64); ok && n > 0 && n < 1<<20 {
				c := cloneAction(a)
				c.Toxic.Attributes[attr] = n * 2
				out = append(out, mildAction{fmt.Sprintf("%s %d", attr, n*2), c})
			}
		}
	case harness.ActionSetHTTPFaults:
		for i, f := range a.HTTPFaults {
			p := f.Probability
			if p == 0 {
				p = 1
			}
			if p > 0.1 {
				c := cloneAction(a)
				c.HTTPFaults[i].Probability = float64(int(p*50+0.5)) / 100
				out = append(out, mildAction{fmt.Sprintf("probability %.2f", c.HTTPFaults[i].Probability), c})
			}
			if f.Delay > fakeservers.Duration(20*time.Millisecond) {
				c := cloneAction(a)
				c.HTTPFaults[i].Delay = fakeservers.Duration(roundTo(f.Delay.Std()/2, 10*time.Millisecond))
				out = append(out, mildAction{fmt.Sprintf("delay %v", c.HTTPFaults[i].Delay.Std()), c})
			}
			if f.BytesPerSecond > 0 {
				c := cloneAction(a)
				c.HTTPFaults[i].BytesPerSecond = f.BytesPerSecond * 2
				out = append(out, mildAction{fmt.Sprintf("%d B/s", c.HTTPFaults[i].BytesPerSecond), c})
			}
			if f.CutAfterBytes > 0 {
				c := cloneAction(a)
				c.HTTPFaults[i].CutAfterBytes = f.CutAfterBytes * 2
				out = append(out, mildAction{fmt.Sprintf("cut after %d bytes", c.HTTPFaults[i].CutAfterBytes), c})
			}
			if len(a.HTTPFaults) > 1 {
				c := cloneAction(a)
				c.HTTPFaults = slices.Delete(c.HTTPFaults, i, i+1)
				out = append(out, mildAction{fmt.Sprintf("without fault %q", f.Name), c})
			}
		}
	}
	return out
}
