package brokenclients

import (
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/pooledclient"
)

// swappedGaugesClient is the reference client whose scrape reports its
// active connections as idle and its idle ones as active: the two gauges
// wired to each other's counter, a bug that passes every review because
// each number on its own looks plausible.
type swappedGaugesClient struct {
	*pooledclient.Client // Do, CloseIdleConnections and Close as they are
}

func newSwappedPoolGauges(svc harness.Service) (harness.Client, error) {
	cl, err := configured(svc, nil)
	if err != nil {
		return nil, err
	}
	return swappedGaugesClient{cl}, nil
}

// GatherMetrics returns the client's metrics with the two connection
// gauges' names exchanged.
func (c swappedGaugesClient) GatherMetrics() ([]*dto.MetricFamily, error) {
	fams, err := c.Client.GatherMetrics()
	for _, f := range fams {
		name := f.GetName()
		switch {
		case strings.HasSuffix(name, harness.MetricActiveConnections):
			swapped := strings.TrimSuffix(name, harness.MetricActiveConnections) + harness.MetricIdleConnections
			f.Name = &swapped
		case strings.HasSuffix(name, harness.MetricIdleConnections):
			swapped := strings.TrimSuffix(name, harness.MetricIdleConnections) + harness.MetricActiveConnections
			f.Name = &swapped
		}
	}
	return fams, err
}
