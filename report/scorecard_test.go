package report_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/report"
)

func TestScorecardListsEveryVerdictAndTheOutcome(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, report.WriteScorecard(&b, handCert(), report.Meta{Client: "test"}))
	out := b.String()
	assert.Contains(t, out, "scorecard: test client on the embedded environment")
	lines := strings.Split(out, "\n")
	row := func(check string) string {
		for _, l := range lines {
			if strings.Contains(l, " "+check+" ") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		return ""
	}
	assert.Equal(t, "mixed leak.goroutines pass 0 goroutines 0 goroutines 42 none left", row("leak.goroutines"))
	assert.Equal(t, "mixed leak.fds n/a - - 42 no fd counts on this OS", row("leak.fds"))
	assert.Contains(t, row("pool.bound"), "mixed pool.bound FAIL 20 connections 16 connections 42")
	assert.Contains(t, out, "INTERRUPTED (partial results): 1 checks passed, 1 failed, 1 not applicable, in 2 scenarios (3s)")

	assert.ErrorIs(t, report.WriteScorecard(&b, nil, report.Meta{}), report.ErrNoCertificate)
}
