package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/proxy"
	"github.com/poolproof/poolproof/scenarios"
)

// proxyFlags are certify's options for certifying a reverse proxy
// (-proxy): which one, from which configuration, and what the
// configuration promises.
type proxyFlags struct {
	kind     string
	config   string
	failover time.Duration
	maxConns int
	idle     time.Duration
}

func addProxyFlags(fs *flag.FlagSet, p *proxyFlags) {
	fs.StringVar(&p.kind, "proxy", "", "certify a reverse proxy instead of a client: "+strings.Join(proxy.Kinds, " or ")+" (the machine's own), started from -proxy-config between the client (-client, the reference by default) and the services, which run as replicas behind it; runs the proxy catalog")
	fs.StringVar(&p.config, "proxy-config", "", "the proxy's configuration, with placeholders for poolproof's addresses: {{<service>.listen}}, {{<service>-<n>}}, {{<service>.each}}, {{replica}}, {{tempdir}} (see proxies/README.md)")
	fs.DurationVar(&p.failover, "proxy-fail-timeout", scenarios.DefaultFailTimeout, "how long the configuration keeps a failed replica out (nginx: fail_timeout; HAProxy: inter x rise); a recovered replica must get traffic again within it and 1s")
	fs.IntVar(&p.maxConns, "proxy-max-conns", 0, "the most connections the configuration opens to one replica at once (nginx: max_conns; HAProxy: maxconn); 0: not stated, the client's concurrent calls bound them")
	fs.DurationVar(&p.idle, "proxy-upstream-idle", scenarios.DefaultUpstreamIdle, "your upstreams' idle timeout: in the keep-alive race the replicas close connections idle this long, and the proxy must drop them sooner")
}

// checkProxyFlags refuses proxy options that cannot go together.
func checkProxyFlags(f certifyFlags) error {
	p := f.proxy
	switch {
	case p.kind == "" && p.config != "":
		return usageError{"-proxy-config needs -proxy: say which proxy reads it (" + strings.Join(proxy.Kinds, " or ") + ")"}
	case p.kind == "":
		return nil
	case !slices.Contains(proxy.Kinds, p.kind):
		return usageError{fmt.Sprintf("-proxy %q: use %s", p.kind, strings.Join(proxy.Kinds, " or "))}
	case p.config == "":
		return usageError{fmt.Sprintf("-proxy %s needs -proxy-config: the configuration to certify, e.g. proxies/nginx-keepalive.conf", p.kind)}
	case f.env != env.NameEmbedded:
		return usageError{fmt.Sprintf("-env %s: -proxy runs its services as replicas on the embedded environment; leave -env out", f.env)}
	case f.http2:
		return usageError{"-http2: the proxy catalog runs on HTTP/1.1, what the proxy speaks to its upstreams; leave -http2 out"}
	case p.failover <= 0 || p.idle <= 0 || p.maxConns < 0:
		return usageError{"-proxy-fail-timeout and -proxy-upstream-idle must be positive, -proxy-max-conns not negative"}
	}
	return nil
}

// selectProxyScenarios picks the profile's proxy catalog, held to what the
// flags say the configuration promises, narrowed to filter.
func selectProxyScenarios(profile, filter string, p proxyFlags) ([]harness.Scenario, error) {
	o := scenarios.ProxyOptions{FailTimeout: p.failover, MaxUpstreamConns: p.maxConns, UpstreamIdle: p.idle}
	all, err := byProfile(profile,
		func() []harness.Scenario { return scenarios.ProxyQuick(o) },
		func() []harness.Scenario { return scenarios.Proxy(o) },
		func() []harness.Scenario { return scenarios.ProxySoak(o) })
	if err != nil {
		return nil, err
	}
	return filterScenarios(all, profile+" proxy profile", filter)
}

// certifyProxy starts the proxy from its configuration in front of the
// services' replicas, certifies the catalog through it and stops it, every
// process of it, whatever the outcome. A configuration the proxy rejects
// is reported in the proxy's own words, on one line, with exit code 2.
func certifyProxy(ctx context.Context, f certifyFlags, catalog []harness.Scenario, factory harness.ClientFactory, profile harness.Profile, stdout, stderr io.Writer) int {
	e, err := proxy.Open(ctx, proxy.Config{Kind: f.proxy.kind, File: f.proxy.config})
	if err != nil {
		fmt.Fprintf(stderr, "poolproof certify: -proxy-config %s: %s\n", f.proxy.config, oneLine(err))
		if proxy.Unusable(err) {
			return 2
		}
		return 1
	}
	defer e.Close()

	fronted := e.Template().Services
	var runnable, skipped []harness.Scenario
	for _, s := range catalog {
		if mix := s.Workload.Mix; (mix.Inventory > 0 && !slices.Contains(fronted, fakeservers.Inventory)) ||
			(mix.Payment > 0 && !slices.Contains(fronted, fakeservers.Payment)) || (mix.Notification > 0 && !slices.Contains(fronted, fakeservers.Notification)) {
			skipped = append(skipped, s)
			continue
		}
		runnable = append(runnable, s)
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "poolproof: skipping %s: it calls a service %s does not listen for (it listens for %s)\n", s.Name, f.proxy.config, strings.Join(fronted, ", "))
	}
	if len(runnable) == 0 {
		fmt.Fprintf(stderr, "poolproof certify: -proxy-config %s: no scenario to run: the proxy catalog calls inventory and payment; add {{inventory.listen}} and {{payment.listen}}\n", f.proxy.config)
		return 2
	}

	runs := harness.Runs(runnable, profile)
	fmt.Fprintf(stderr, "poolproof: certifying %s from %s in front of %d replicas of %s, with the %s client, %s profile, %d scenarios, about %s\n",
		f.proxy.kind, f.proxy.config, e.Template().Replicas, strings.Join(fronted, " and "), f.client, f.profile, len(runs), harness.WallTime(runs).Round(time.Second))
	return certifyOn(ctx, e, f, runnable, factory, profile, func() string { return certified(f) }, stdout, stderr)
}

// certified names what the reports say was certified: the client, or the
// proxy's configuration through it ("proxies/x.conf via the reference
// client").
func certified(f certifyFlags) string {
	if f.proxy.kind == "" {
		return f.client
	}
	return f.proxy.config + " via the " + f.client
}
