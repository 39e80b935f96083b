package harness

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// Scenario families: what kind of property a scenario is about. Suites turn
// them into Ginkgo labels and the CLI filters on them.
const (
	FamilyLeak     = "leak"
	FamilyPool     = "pool"
	FamilyTimeout  = "timeout"
	FamilyRetry    = "retry"
	FamilyBreaker  = "breaker"
	FamilyRecovery = "recovery"
)

// Families lists every scenario family, in the order a report shows them.
var Families = []string{FamilyLeak, FamilyPool, FamilyTimeout, FamilyRetry, FamilyBreaker, FamilyRecovery}

// DefaultSeed seeds a run whose scenario names none: its workload draws and the
// fake services' fault draws.
const DefaultSeed int64 = 1

// ErrInvalidScenario is returned by Scenario.Validate and Certify for a
// scenario that cannot be run as written.
var ErrInvalidScenario = errors.New("invalid scenario")

// Scenario is one named, replayable experiment: a workload, a fault
// schedule and the checks that judge it. It is data: the same scenario runs
// unchanged on every environment, and everything it needs from the network
// or the servers goes through its Steps (keep-alive included, with
// SetKeepAlive), never through environment options.
type Scenario struct {
	// Name identifies the scenario in reports, filters and request ids,
	// e.g. "blackhole".
	Name string `json:"name"`
	// Proves is one sentence saying what passing the scenario proves.
	Proves string `json:"proves"`
	// Family is one of Families.
	Family string `json:"family"`
	// Seed seeds the workload's draws (0 means DefaultSeed). Certify can
	// replace it for every scenario at once.
	Seed int64 `json:"seed"`
	// Workload drives the client; its Duration is the scenario's length.
	Workload Workload `json:"workload"`
	// Steps is the nemesis schedule, at offsets inside Workload.Duration.
	Steps []Step `json:"steps,omitempty"`
	// Stretch lengthens fault windows to fit the contract a client
	// declares (see FitTo), so that a check is judged rather than marked
	// not applicable, and a long declared timeout faces a fault that
	// outlasts it.
	Stretch []Stretch `json:"stretch,omitempty"`
	// Protocol pins what the services offer the client (ProtocolHTTP1 or
	// ProtocolHTTP2); empty: HTTP/1.1, and HTTP/2 as well when the
	// client's Profile declares it (see ForProtocols).
	Protocol string `json:"protocol,omitempty"`
	// Checks judge the run. They are data: each one's bounds come from
	// the contract the history declares unless a field sets them, so the
	// same scenario holds every client to its own Profile.
	Checks Checks `json:"checks"`
}

// EffectiveSeed is the seed a run of s uses: override when non-zero, else
// s.Seed, else DefaultSeed.
func (s Scenario) EffectiveSeed(override int64) int64 {
	switch {
	case override != 0:
		return override
	case s.Seed != 0:
		return s.Seed
	}
	return DefaultSeed
}

// Spec is the run of s for a client that declares p.
func (s Scenario) Spec(p Profile, seedOverride int64) RunSpec {
	return RunSpec{
		Scenario: s.Name,
		Protocol: cmp.Or(s.Protocol, ProtocolHTTP1),
		Seed:     s.EffectiveSeed(seedOverride),
		Workload: s.Workload,
		Steps:    slices.Clone(s.Steps),
		Profile:  p,
	}
}

// Contract fields a Stretch can fit a window to.
const (
	NeedRequestTimeout   = "request_timeout"
	NeedBreakerOpenDelay = "breaker_open_delay"
	NeedRecoveryTime     = "recovery_time"
)

// MaxStretchedDuration caps a workload that Stretch lengthened: a contract
// declaring minutes does not make a certification last for hours; a check
// the capped run cannot judge says so.
const MaxStretchedDuration = time.Minute

// Stretch asks that the window [From, Until) of a scenario's schedule last
// at least Factor x the declared contract field Need (the largest over the
// workload's services) + Plus. FitTo moves every step at or after Until,
// and the workload's end, later by what is missing.
type Stretch struct {
	From   time.Duration `json:"from"`
	Until  time.Duration `json:"until"`
	Need   string        `json:"need"`
	Factor float64       `json:"factor,omitempty"` // default 1
	Plus   time.Duration `json:"plus,omitempty"`
}

// FitTo returns s with its windows stretched for a client that declares p,
// the workload at most MaxStretchedDuration long (or as long as it was).
// Undeclared fields stretch nothing.
func (s Scenario) FitTo(p Profile) Scenario {
	if len(s.Stretch) == 0 {
		return s
	}
	out := s
	out.Steps = slices.Clone(s.Steps)
	out.Stretch = slices.Clone(s.Stretch)
	limit := max(MaxStretchedDuration, s.Workload.Duration)
	for i := range out.Stretch {
		st := out.Stretch[i]
		var field time.Duration
		for _, svc := range s.Workload.withDefaults().services() {
			c := p.For(svc)
			switch st.Need {
			case NeedRequestTimeout:
				field = max(field, c.RequestTimeout)
			case NeedBreakerOpenDelay:
				field = max(field, c.BreakerOpenDelay)
			case NeedRecoveryTime:
				field = max(field, c.RecoveryTime)
			}
		}
		if field <= 0 {
			continue
		}
		need := time.Duration(cmp.Or(st.Factor, 1)*float64(field)) + st.Plus
		delta := min(need-(st.Until-st.From), limit-out.Workload.Duration)
		if delta <= 0 {
			continue
		}
		for j := range out.Steps {
			if out.Steps[j].At >= st.Until {
				out.Steps[j].At += delta
			}
		}
		for j := range out.Stretch {
			if out.Stretch[j].From >= st.Until {
				out.Stretch[j].From += delta
			}
			if out.Stretch[j].Until >= st.Until {
				out.Stretch[j].Until += delta
			}
		}
		out.Workload.Duration += delta
	}
	return out
}

// HTTP2RunSuffix ends the name of a scenario's run on HTTP/2, e.g.
// "baseline@h2": its verdicts, history and report entries carry that name.
const HTTP2RunSuffix = "@" + ProtocolHTTP2

// ForProtocols lists the runs a certification makes of scenarios for a
// client that declares p: each scenario on HTTP/1.1, where pool bugs show
// (one connection carries one call), and, when p declares HTTP2, again on
// HTTP/2 as "<name>@h2". A scenario that pins its Protocol runs once, on it.
func ForProtocols(scenarios []Scenario, p Profile) []Scenario {
	out := make([]Scenario, 0, 2*len(scenarios))
	for _, s := range scenarios {
		if s.Protocol != "" {
			out = append(out, s)
			continue
		}
		h1 := s
		h1.Protocol = ProtocolHTTP1
		out = append(out, h1)
		if p.HTTP2 {
			h2 := s
			h2.Name, h2.Protocol = s.Name+HTTP2RunSuffix, ProtocolHTTP2
			out = append(out, h2)
		}
	}
	return out
}

// Runs lists the runs Certify makes of scenarios for a client that declares
// p, in order: each scenario per protocol (ForProtocols), its windows fitted
// to the contract (FitTo).
func Runs(scenarios []Scenario, p Profile) []Scenario {
	runs := ForProtocols(scenarios, p)
	for i := range runs {
		runs[i] = runs[i].FitTo(p)
	}
	return runs
}

// WallTime estimates how long Certify takes for runs: their workloads plus
// about a second each for reset, teardown and leak measurement.
func WallTime(runs []Scenario) time.Duration {
	var d time.Duration
	for _, r := range runs {
		d += r.Workload.Duration + defaultOverhead
	}
	return d
}

// CheckIDs lists the ids of the checks s runs.
func (s Scenario) CheckIDs() []string {
	ids := make([]string, 0, len(s.Checks))
	for _, c := range s.Checks {
		if c != nil {
			ids = append(ids, c.ID())
		}
	}
	return ids
}

// FieldError is a problem with one field of a scenario, named by its path
// as a scenario file writes it, e.g. "steps[2].at".
type FieldError struct {
	Path    string
	Problem string // what is wrong and what to write instead
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

// Validate refuses a scenario that cannot be run or judged: no name, an
// unknown family, an invalid workload, a step outside the workload's
// duration or without an action, no checks, or two
// checks with the same id. The error wraps ErrInvalidScenario and a
// *FieldError naming the field.
func (s Scenario) Validate() error {
	fe := s.fieldProblem()
	if fe == nil {
		return nil
	}
	name := s.Name
	if name == "" {
		name = "<unnamed>"
	}
	return fmt.Errorf("%w %s: %w", ErrInvalidScenario, name, fe)
}

func (s Scenario) fieldProblem() *FieldError {
	bad := func(path, format string, args ...any) *FieldError {
		return &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	if strings.TrimSpace(s.Name) == "" {
		return bad("name", "empty: name it, e.g. \"blackhole\"")
	}
	if strings.ContainsAny(s.Name, " \t\n/") {
		return bad("name", "%q has spaces or slashes: use e.g. \"latency-spike\"", s.Name)
	}
	if !slices.Contains(Families, s.Family) {
		return bad("family", "%q: use one of %s", s.Family, strings.Join(Families, ", "))
	}
	if strings.TrimSpace(s.Proves) == "" {
		return bad("proves", "empty: say in one sentence what passing proves")
	}
	if err := s.Workload.withDefaults().validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return bad("workload."+fe.Path, "%s", fe.Problem)
		}
		return bad("workload", "%v", err)
	}
	for i, st := range s.Steps {
		path := fmt.Sprintf("steps[%d]", i)
		switch {
		case st.At < 0:
			return bad(path+".at", "%v is negative: steps run at offsets from the workload's start", st.At)
		case st.At >= s.Workload.Duration:
			return bad(path+".at", "%v is not before the workload's %v duration: put the step inside it, or it never runs", st.At, s.Workload.Duration)
		case st.Action.Kind == "":
			return bad(path+".action.kind", "empty: say what the step does, e.g. %q", ActionAddToxic)
		case st.Action.Service == "":
			return bad(path+".action.service", "empty: name the service it acts on, e.g. %q", fakeservers.Inventory)
		}
	}
	for i, st := range s.Stretch {
		path := fmt.Sprintf("stretch[%d]", i)
		if st.From < 0 || st.Until <= st.From || st.Until > s.Workload.Duration {
			return bad(path, "want 0 <= from < until <= the workload's duration %v, got %v..%v", s.Workload.Duration, st.From, st.Until)
		}
		if !slices.Contains([]string{NeedRequestTimeout, NeedBreakerOpenDelay, NeedRecoveryTime}, st.Need) {
			return bad(path+".need", "%q: use %q, %q or %q", st.Need, NeedRequestTimeout, NeedBreakerOpenDelay, NeedRecoveryTime)
		}
		if st.Factor < 0 || st.Plus < 0 {
			return bad(path, "factor and plus must not be negative")
		}
	}
	if len(s.Checks) == 0 {
		return bad("checks", "empty: a scenario nobody judges proves nothing; add e.g. {\"id\": \"pool.bound\"}")
	}
	seen := make(map[string]bool, len(s.Checks))
	for i, c := range s.Checks {
		path := fmt.Sprintf("checks[%d]", i)
		if c == nil {
			return bad(path, "nil: leave it out")
		}
		if seen[c.ID()] {
			return bad(path+".id", "%q appears twice: give each check one bound", c.ID())
		}
		seen[c.ID()] = true
	}
	return nil
}

// validateScenarios checks every scenario and that no two share a name.
func validateScenarios(scenarios []Scenario) error {
	if len(scenarios) == 0 {
		return fmt.Errorf("%w: no scenarios: pass at least one, e.g. from scenarios.Standard()", ErrInvalidScenario)
	}
	seen := make(map[string]bool, len(scenarios))
	var errs []error
	for _, s := range scenarios {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%w %s: the name appears twice: names identify scenarios in reports and filters", ErrInvalidScenario, s.Name))
		}
		seen[s.Name] = true
	}
	return errors.Join(errs...)
}
