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

// teardownClients calls CloseIdleConnections then Close on every distinct
// client that has them, each call bounded by timeout: a call that does not
// return is recorded as hung and abandoned, so teardown itself never hangs.
// A client shared by several services is torn down once.
func teardownClients(ctx context.Context, clients map[string]Client, timeout time.Duration) []TeardownCall {
	names := make([]string, 0, len(clients))
	for n := range clients {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		out  []TeardownCall
		seen []Client
	)
	for _, n := range names {
		c := clients[n]
		if sameClientSeen(seen, c) {
			continue
		}
		seen = append(seen, c)
		ic, cl := teardownOf(c)
		if ic != nil {
			out = append(out, boundedTeardown(ctx, n, "CloseIdleConnections", timeout, func() error {
				ic.CloseIdleConnections()
				return nil
			}))
		}
		if cl != nil {
			out = append(out, boundedTeardown(ctx, n, "Close", timeout, cl.Close))
		}
	}
	return out
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
