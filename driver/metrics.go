package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ErrNoMetrics is returned by GatherMetrics for a driver whose init_ok gave
// no metrics_url.
var ErrNoMetrics = errors.New("the driver gave no metrics_url in init_ok")

// scrapeTimeout bounds one scrape of a driver's metrics_url.
const scrapeTimeout = time.Second

// maxScrape bounds what a scrape reads.
const maxScrape = 4 << 20

// GatherMetrics scrapes the metrics_url the driver gave in init_ok (the
// Prometheus text format), so that the harness holds the driver's own pool
// metrics to the servers' truth (harness.MetricsGatherer). The URL must be
// http on a loopback address: poolproof sends nothing elsewhere.
func (p *Process) GatherMetrics() ([]*dto.MetricFamily, error) {
	raw := p.Info().MetricsURL
	if raw == "" {
		return nil, ErrNoMetrics
	}
	u, err := loopbackURL(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the driver's metrics_url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxScrape))
		return nil, fmt.Errorf("scraping the driver's metrics_url %s: status %d", raw, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxScrape))
	if err != nil {
		return nil, fmt.Errorf("the driver's metrics_url %s: %w", raw, err)
	}
	out := make([]*dto.MetricFamily, 0, len(byName))
	for _, f := range byName {
		out = append(out, f)
	}
	return out, nil
}

// metricsClient scrapes drivers: no proxy, no keep-alive beyond the scrape.
var metricsClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: scrapeTimeout}

// loopbackURL parses raw and refuses anything but http to a loopback IP
// (127.0.0.0/8 or ::1; not a name, which could resolve elsewhere).
func loopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("metrics_url %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("metrics_url %q: want http://127.0.0.1:PORT/...", raw)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
		return u, nil
	}
	return nil, fmt.Errorf("metrics_url %q: not a loopback address; poolproof scrapes only 127.0.0.1 or ::1", raw)
}
