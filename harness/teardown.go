package harness

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/poolproof/poolproof/internal/bounded"
)

// IdleCloser is implemented by clients that can drop their idle
// connections, like *http.Client; the harness calls it at teardown.
type IdleCloser interface{ CloseIdleConnections() }

// Closer is implemented by clients that own resources beyond idle
// connections; the harness calls Close after CloseIdleConnections.
type Closer interface{ Close() error }

// LeakReporter is implemented by a client that runs in a child process (a
// driver). The harness's own measurements (goroutines and file descriptors
// of this process) say nothing about such a client, so it measures its
// process itself: ProcessLeaks returns the counts it took before its
// first call and the counts now. Run calls it after CloseIdleConnections
// and before Close, repeatedly while it waits (bounded by WithSettle) for
// the counts to return to that baseline; before Close because the
// process's exit closes every socket it leaked.
type LeakReporter interface {
	ProcessLeaks() ProcessLeaks
}

// teardownClients calls CloseIdleConnections on every distinct client that
// has it (see teardownOf), then beforeClose (when not nil) with the calls
// made so far, then Close on every distinct client that has it, each call
// bounded by timeout: a call that does not return is recorded as hung and
// abandoned, so teardown itself never hangs. A client shared by several
// services is torn down once.
func teardownClients(ctx context.Context, clients map[string]Client, timeout time.Duration, beforeClose func(idle []TeardownCall)) []TeardownCall {
	names, distinct := distinctClients(clients)
	var out []TeardownCall
	for i, c := range distinct {
		if ic, _ := teardownOf(c); ic != nil {
			out = append(out, boundedTeardown(ctx, names[i], "CloseIdleConnections", timeout, func() error {
				ic.CloseIdleConnections()
				return nil
			}))
		}
	}
	if beforeClose != nil {
		beforeClose(slices.Clone(out))
	}
	for i, c := range distinct {
		if _, cl := teardownOf(c); cl != nil {
			out = append(out, boundedTeardown(ctx, names[i], "Close", timeout, cl.Close))
		}
	}
	return out
}

// distinctClients lists every client once, in the order of the service
// names, with the first service it serves: a client shared by several
// services is torn down and measured once.
func distinctClients(clients map[string]Client) ([]string, []Client) {
	all := make([]string, 0, len(clients))
	for n := range clients {
		all = append(all, n)
	}
	sort.Strings(all)
	var (
		names    []string
		distinct []Client
	)
	for _, n := range all {
		c := clients[n]
		if sameClientSeen(distinct, c) {
			continue
		}
		names = append(names, n)
		distinct = append(distinct, c)
	}
	return names, distinct
}

// leakReporters lists the distinct clients that measure their own process,
// and the services they serve.
func leakReporters(clients map[string]Client) ([]LeakReporter, map[string]bool) {
	_, distinct := distinctClients(clients)
	var out []LeakReporter
	for _, c := range distinct {
		if lr, ok := c.(LeakReporter); ok {
			out = append(out, lr)
		}
	}
	services := make(map[string]bool)
	for n, c := range clients {
		if _, ok := c.(LeakReporter); ok {
			services[n] = true
		}
	}
	return out, services
}

// teardownOf returns the teardown methods x has, nil for those it lacks.
// An adapter of this package has both whatever it adapts, so it says which
// reach something: teardown calls and records only those.
func teardownOf(x any) (IdleCloser, Closer) {
	if a, ok := x.(*adapted); ok {
		var (
			ic IdleCloser
			cl Closer
		)
		if a.closeIdle != nil {
			ic = a
		}
		if a.close != nil {
			cl = a
		}
		return ic, cl
	}
	ic, _ := x.(IdleCloser)
	cl, _ := x.(Closer)
	return ic, cl
}

// closedOwnIdle reports, per service, whether its client closed its own idle
// connections at teardown: it has CloseIdleConnections or Close and none of
// its teardown calls hung. Whatever such a client still has open afterwards
// is outside its idle pool; for any other client the servers must close
// the idle pool for it (see sortIdleClose).
func closedOwnIdle(clients map[string]Client, calls []TeardownCall) map[string]bool {
	out := make(map[string]bool, len(clients))
	for name, c := range clients {
		if idle, closer := teardownOf(c); idle == nil && closer == nil {
			continue
		}
		out[name] = !slices.ContainsFunc(calls, func(tc TeardownCall) bool {
			return tc.Hung && (tc.Service == name || sameClientSeen([]Client{clients[tc.Service]}, c))
		})
	}
	return out
}

func sameClientSeen(seen []Client, c Client) bool {
	t := reflect.TypeOf(c)
	if !t.Comparable() {
		return false
	}
	for _, s := range seen {
		if reflect.TypeOf(s) == t && s == c {
			return true
		}
	}
	return false
}

func boundedTeardown(ctx context.Context, service, method string, timeout time.Duration, fn func() error) TeardownCall {
	rec := TeardownCall{Service: service, Method: method}
	start := time.Now()
	err, abandoned := bounded.Call(ctx, timeout, 0, func(context.Context) error { return fn() })
	switch {
	case abandoned && ctx.Err() != nil:
		rec.Hung, rec.Err = true, fmt.Sprintf("abandoned: %v", ctx.Err())
	case abandoned:
		rec.Hung, rec.Err = true, fmt.Sprintf("did not return within %v; abandoned", timeout)
	case err != nil:
		rec.Err = err.Error()
	}
	rec.Took = time.Since(start)
	return rec
}
