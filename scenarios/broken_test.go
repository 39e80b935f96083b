package scenarios_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/procfd"
	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/report"
	"github.com/poolproof/poolproof/scenarios"
)

// exercisedBy names, per check, the Standard scenarios whose faults expose
// the bugs that check is meant to catch (leak checks run everywhere, but a
// retry leak needs retries to show).
var exercisedBy = map[string][]string{
	check.IDLeakGoroutines:      {scenarios.Baseline, scenarios.Flaky5xx},
	check.IDLeakFDs:             {scenarios.Baseline},
	check.IDLeakServerConns:     {scenarios.Flaky5xx},
	check.IDNoHang:              {scenarios.SlowBody},
	check.IDPoolBound:           {scenarios.PoolExhaustion},
	check.IDPoolChurn:           {scenarios.Baseline, scenarios.Flaky5xx},
	check.IDPoolExhaustion:      {scenarios.PoolExhaustion},
	check.IDTimeoutRequestBound: {scenarios.SlowBody},
	check.IDRetryAttempts:       {scenarios.Flaky5xx},
	check.IDRetryBackoff:        {scenarios.Flaky5xx},
	check.IDRetryAfter:          {scenarios.RetryAfter429},
	check.IDLedgerNoDuplicate:   {scenarios.ProcessThenFail},
	check.IDBreakerOpens:        {scenarios.ServerErrorStorm},
	check.IDBreakerHalfOpen:     {scenarios.ServerErrorStorm},
	check.IDBreakerRecovers:     {scenarios.ServerErrorStorm},
	check.IDIsolation:           {scenarios.OneServiceDown},
	// Not restart: under DefaultProfile (3s recovery time) it leaves a
	// 500ms tail after recovery, which the fault step's own scheduling slip
	// makes shorter than the checks' 500ms MinSpan, so they are not
	// applicable there; connection-resets leaves a second.
	check.IDRecoveryThroughput: {scenarios.ConnectionResets},
	check.IDRecoveryLatency:    {scenarios.ConnectionResets},
	check.IDIntegrityDigest:    {scenarios.Baseline},
	check.IDGoodput:            {scenarios.FragmentedResponses, scenarios.Flaky5xx},
	check.IDCallerDeadline:     {scenarios.RetryAfter429},
	check.IDPoolLifetime:       {scenarios.PoolIdleLifetime},
	check.IDPoolIdleTimeout:    {scenarios.PoolIdleLifetime},
	check.IDMetricsTruthful:    {scenarios.PoolExhaustion},
	check.IDAbandonedWork:      {scenarios.AbandonedWork},
	check.IDTimeoutConnect:     {scenarios.ConnectNeverCompletes},

	// The retry oracles.
	check.IDRetryBackoffGrows:    {scenarios.Flaky5xx},
	check.IDRetryJitter:          {scenarios.Flaky5xx},
	check.IDRetryGivesUpPromptly: {scenarios.Flaky5xx, scenarios.RetryAfter429},
	check.IDRetryAttemptsUsed:    {scenarios.Flaky5xx, scenarios.RetryAfter429},
	check.IDRetryBackoffBounded:  {scenarios.Flaky5xx},
}

func TestExercisedByNamesScenariosThatJudgeTheCheck(t *testing.T) {
	for id, list := range exercisedBy {
		for _, name := range list {
			s, err := scenarios.Lookup(name)
			require.NoError(t, err)
			assert.Contains(t, s.CheckIDs(), id, "%s judges %s", name, id)
		}
	}
}

// Each gallery client is caught, in the scenarios that exercise them, by
// every check its entry says must catch it: the catalog's checks can fail.
// The gallery clients honour brokenclients.Contract but for their bug, so
// they are held to DefaultProfile.
func TestBrokenClientsAreCaught(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("runs the gallery through its scenarios (about two minutes)")
	}
	requireGalleryCaught(t, func(t testing.TB) harness.Environment { return newEnv(t) }, nil)
}

// requireGalleryCaught runs each gallery client, but those named in skip
// (name -> why), through the scenarios that exercise the checks meant to
// catch it, in a fresh environment from newEnv, and requires every one of
// those checks to fail it. It logs the mutation score, the table README.md
// shows.
func requireGalleryCaught(t *testing.T, newEnv func(testing.TB) harness.Environment, skip map[string]string) {
	t.Helper()
	var table strings.Builder
	table.WriteString("| broken client | meant to be caught by | caught by (check: scenarios) |\n| --- | --- | --- |\n")
	t.Cleanup(func() { t.Logf("mutation score:\n%s", table.String()) })
	for _, e := range brokenclients.All() {
		t.Run(e.Name, func(t *testing.T) {
			if why, ok := skip[e.Name]; ok {
				t.Skip(why)
			}
			require.NotEmpty(t, e.CaughtBy)
			var want []string
			for _, id := range e.CaughtBy {
				names, ok := exercisedBy[id]
				require.True(t, ok, "no scenario exercises %s", id)
				for _, n := range names {
					if !slices.Contains(want, n) {
						want = append(want, n)
					}
				}
			}
			list, err := scenarios.Select(want...)
			require.NoError(t, err)

			// A fresh environment per client: a hung client's abandoned
			// calls must not hold connections into the next one's run.
			env := newEnv(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cert, err := harness.Certify(ctx, env, e.Factory, e.Profile, list)
			require.NoError(t, err)

			failed := map[string][]string{}
			var caught []string
			for _, v := range cert.Failures() {
				if failed[v.Check] == nil {
					caught = append(caught, v.Check)
				}
				failed[v.Check] = append(failed[v.Check], v.Scenario)
			}
			cells := make([]string, len(caught))
			for i, id := range caught {
				cells[i] = id + ": " + strings.Join(failed[id], ", ")
			}
			fmt.Fprintf(&table, "| `%s` | %s | %s |\n", e.Name, strings.Join(e.CaughtBy, ", "), strings.Join(cells, "; "))
			for _, id := range e.CaughtBy {
				assert.NotEmpty(t, failed[id], "%s must be caught by %s in %v; failures: %v", e.Name, id, exercisedBy[id], cert.Failures())
			}
			assert.False(t, cert.Passed())
		})
	}
}

// Every check the harness has is proven able to fail: some gallery client
// is meant to be caught by it (and TestBrokenClientsAreCaught proves it is).
func TestEveryCheckHasAGalleryClient(t *testing.T) {
	meant := map[string][]string{}
	for _, e := range brokenclients.All() {
		for _, id := range e.CaughtBy {
			meant[id] = append(meant[id], e.Name)
		}
	}
	for _, id := range check.AllIDs() {
		if id == "harness.run" { // the runner's own failure, not a property of a client
			continue
		}
		assert.NotEmpty(t, meant[id], "no gallery client is meant to be caught by %s: add one with exactly that bug", id)
		assert.Contains(t, exercisedBy, id, "no scenario is named to exercise %s", id)
	}
}

// The harness survives its client: a client that builds a new client per
// call piles up connections in every scenario (it once exhausted the
// process's descriptors after three scenarios and Certify aborted while
// resetting the environment). Through the whole catalog every scenario is
// now run and judged, leak checks included, the certificate and its report
// are whole, and the process's descriptors come back near where they were.
func TestNewClientPerRequestGetsAWholeCertificate(t *testing.T) {
	testenv.SkipUnderRace(t)
	if testing.Short() {
		t.Skip("runs the standard catalog against a client that leaks connections (about a minute)")
	}
	e, err := brokenclients.Lookup("new-client-per-request")
	require.NoError(t, err)
	env := newEnv(t)
	fdsBefore, fdOK := procfd.Count()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	list := scenarios.Standard()
	start := time.Now()
	cert, err := harness.Certify(ctx, env, e.Factory, harness.DefaultProfile(), list)
	took := time.Since(start)
	require.NoError(t, err)
	require.NotNil(t, cert)
	require.Len(t, cert.Results, len(list), "every scenario has a result")

	leakChecks := []string{check.IDLeakGoroutines, check.IDLeakFDs, check.IDLeakServerConns}
	for _, r := range cert.Results {
		assert.Empty(t, r.Err, "%s ran", r.Scenario)
		assert.NotNil(t, r.History, "%s ran", r.Scenario)
		for _, v := range r.Verdicts {
			assert.NotEqual(t, harness.CheckRun, v.Check, "%s", v)
		}
		for _, id := range leakChecks {
			i := slices.IndexFunc(r.Verdicts, func(v harness.Verdict) bool { return v.Check == id })
			if !assert.GreaterOrEqual(t, i, 0, "%s has a %s verdict", r.Scenario, id) {
				continue
			}
			v := r.Verdicts[i]
			assert.Contains(t, []harness.Status{harness.StatusPass, harness.StatusFail}, v.Status, "%s is judged: %s", id, v)
		}
		if r.History != nil && r.History.StoppedEarly != nil {
			t.Logf("%s stopped early: %+v", r.Scenario, *r.History.StoppedEarly)
		}
	}
	base, ok := cert.Result(scenarios.Baseline)
	require.True(t, ok)
	for _, v := range base.Verdicts {
		if slices.Contains(leakChecks, v.Check) {
			assert.Equal(t, harness.StatusFail, v.Status, "the connections it piles up are caught: %s", v)
			t.Log(v)
		}
	}
	assert.False(t, cert.Passed())

	files, err := report.Write(t.TempDir(), cert, report.Meta{Client: e.Name})
	require.NoError(t, err, "the report can be written")
	assert.NotEmpty(t, files.HTML)

	if fdOK {
		after, _ := procfd.Count()
		// The servers closed every connection the client dropped; a few
		// descriptors of the harness's own (admin calls) may come and go.
		assert.LessOrEqual(t, after, fdsBefore+16, "descriptors back near their start: %d before, %d after", fdsBefore, after)
		t.Logf("descriptors: %d before the certification, %d after", fdsBefore, after)
	}
	t.Logf("standard catalog against %s: %v, %d scenarios", e.Name, took.Round(time.Millisecond), len(cert.Results))
}
