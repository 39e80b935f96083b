package env

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// The admin-API helpers all three environments share: each fake service
// is read and reseeded through its own admin client, and a started server
// is waited for by polling it.

func adminFor(admins map[string]*fakeservers.AdminClient, op, service string) (*fakeservers.AdminClient, error) {
	if c, ok := admins[service]; ok && c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%s %q: %w (no admin API known for it)", op, service, harness.ErrNoServerTruth)
}

func observeAdmin(ctx context.Context, admins map[string]*fakeservers.AdminClient, service string, timeout time.Duration) (fakeservers.Stats, error) {
	c, err := adminFor(admins, "observe", service)
	if err != nil {
		return fakeservers.Stats{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Idle admin connections would look like pooled connections of the
	// client under test to the goroutine leak check: drop them after use.
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return fakeservers.Stats{}, fmt.Errorf("observe %q: %w", service, err)
	}
	return st, nil
}

func openConnsAdmin(ctx context.Context, admins map[string]*fakeservers.AdminClient, service string, timeout time.Duration) (int, error) {
	c, err := adminFor(admins, "open connections", service)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer c.Close() // see observeAdmin
	n, err := c.Conns(ctx)
	if err != nil {
		return 0, fmt.Errorf("open connections %q: %w", service, err)
	}
	return n.Open, nil
}

func closeIdleAdmin(ctx context.Context, admins map[string]*fakeservers.AdminClient, service string, timeout time.Duration) (fakeservers.IdleClose, error) {
	c, err := adminFor(admins, "close idle connections", service)
	if err != nil {
		return fakeservers.IdleClose{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer c.Close() // see observeAdmin
	res, err := c.CloseIdle(ctx)
	if err != nil {
		return fakeservers.IdleClose{}, fmt.Errorf("close idle connections %q: %w", service, err)
	}
	return res, nil
}

// resetAdmins makes every fake service forget its history and reseeds its
// draws (service i of fakeservers.Services with seed+i; a service that is
// not one of them after those, in name order); it goes on after a failure
// and returns every error.
func resetAdmins(ctx context.Context, admins map[string]*fakeservers.AdminClient, seed int64, timeout time.Duration) error {
	names := make([]string, 0, len(admins))
	for name := range admins {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := serviceIndex(a), serviceIndex(b)
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a, b)
	})
	var errs []error
	for i, name := range names {
		c := admins[name]
		if j := serviceIndex(name); j < len(fakeservers.Services) {
			i = j
		}
		runSeed := seed + int64(i)
		func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			defer c.Close()
			if err := c.ResetSeed(ctx, runSeed); err != nil {
				errs = append(errs, fmt.Errorf("reset %q: %w", name, err))
			}
		}()
	}
	return errors.Join(errs...)
}

// serviceIndex is the position of service in fakeservers.Services, or
// len(fakeservers.Services) for any other name.
func serviceIndex(service string) int {
	if i := slices.Index(fakeservers.Services, service); i >= 0 {
		return i
	}
	return len(fakeservers.Services)
}

// waitReady polls probe until it succeeds or ctx ends, at most every 50ms.
func waitReady(ctx context.Context, what string, probe func(context.Context) error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		last = probe(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer: %w (last error: %w)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// toxiproxyVersion asks a Toxiproxy API for its version, over a connection
// that is closed afterwards.
func toxiproxyVersion(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/version", nil)
	if err != nil {
		return fmt.Errorf("toxiproxy URL %q: %w", base, err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("toxiproxy API %s/version: status %d, want 200 (is it Toxiproxy?)", base, resp.StatusCode)
	}
	return nil
}
