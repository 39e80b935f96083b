package explore

import (
	"context"
	"slices"

	"github.com/poolproof/poolproof/harness"
)

// CertifyRunner runs a scenario as "poolproof certify -profile none
// -scenarios FILE" does: harness.Certify on Env, the client from Factory
// held to Profile, the scenario's own seed.
type CertifyRunner struct {
	Env     harness.Environment
	Factory harness.ClientFactory
	Profile harness.Profile
	// Options are passed to every Certify (e.g. a progress callback).
	Options []harness.CertifyOption
}

// Run certifies s alone and sorts its verdicts into an Outcome.
func (r CertifyRunner) Run(ctx context.Context, s harness.Scenario) (Outcome, error) {
	cert, err := harness.Certify(ctx, r.Env, r.Factory, r.Profile, []harness.Scenario{s}, r.Options...)
	if cert == nil {
		return Outcome{}, err
	}
	out := OutcomeOf(cert)
	if err != nil && out.Trouble == "" {
		out.Trouble = err.Error()
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, nil
}

// OutcomeOf sorts a certificate's verdicts: failed checks of the client,
// and trouble with the run itself.
func OutcomeOf(cert *harness.Certificate) Outcome {
	out := Outcome{Certificate: cert}
	for _, res := range cert.Results {
		if res.Err != "" && out.Trouble == "" {
			out.Trouble = res.Err
		}
		for _, v := range res.Verdicts {
			out.Verdicts = append(out.Verdicts, v)
			if v.Status != harness.StatusFail {
				continue
			}
			switch v.Check {
			case harness.CheckRun, harness.CheckNemesis:
				if out.Trouble == "" {
					out.Trouble = v.Check + ": " + v.Reason
				}
			default:
				if !slices.Contains(out.Failed, v.Check) {
					out.Failed = append(out.Failed, v.Check)
				}
			}
		}
	}
	return out
}
