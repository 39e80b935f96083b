package env

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/internal/bounded"
)

// DefaultCallTimeout bounds one fault-driver call when the caller gives none.
const DefaultCallTimeout = 5 * time.Second

// FaultDriver applies nemesis actions through Toxiproxy's own client library
// and the fake services' admin API, never by reaching into objects, so the
// same scenario runs against in-process, containerised and remote servers.
//
// Toxiproxy's client takes no context and its http.Client (30s timeout) is
// unexported, so every Toxiproxy call runs in its own goroutine and the
// driver stops waiting at the context's deadline or callTimeout, whichever
// comes first. A call abandoned that way finishes in the background, at the
// latest when the Toxiproxy client's own 30s timeout fires; its goroutine is
// named in Embedded.GoroutineIgnores so a leak check does not blame the
// client under test for it.
type FaultDriver struct {
	toxiproxy   *toxiclient.Client
	admins      map[string]*fakeservers.AdminClient // by service; missing for services that are not fake services
	callTimeout time.Duration

	url      string
	baseline map[string]fakeservers.KeepAlive // keep-alive Reset restores, by service; zero when absent
}

// FaultDriverOption configures a FaultDriver.
type FaultDriverOption func(*FaultDriver)

// WithBaselineKeepAlive sets the keep-alive policy Reset restores per
// service (services not in the map get the zero policy: Go's defaults, no
// request limit). Environments that start their servers with a non-default
// policy pass it here so that Reset returns to the start state.
func WithBaselineKeepAlive(baseline map[string]fakeservers.KeepAlive) FaultDriverOption {
	return func(d *FaultDriver) {
		for svc, ka := range baseline {
			d.baseline[svc] = ka
		}
	}
}

// NewFaultDriver returns a driver for the Toxiproxy API at toxiproxyURL, whose
// proxies are named after the services, and the fake services' admin clients.
// Every call is bounded by callTimeout (DefaultCallTimeout when <= 0) as well
// as by its context.
func NewFaultDriver(toxiproxyURL string, admins map[string]*fakeservers.AdminClient, callTimeout time.Duration, opts ...FaultDriverOption) *FaultDriver {
	if callTimeout <= 0 {
		callTimeout = DefaultCallTimeout
	}
	if admins == nil {
		admins = map[string]*fakeservers.AdminClient{}
	}
	c := toxiclient.NewClient(toxiproxyURL)
	// Toxiproxy's API refuses browsers only; a distinct agent makes the
	// harness's calls easy to spot in its logs.
	c.UserAgent = "poolproof-harness"
	d := &FaultDriver{
		toxiproxy:   c,
		admins:      admins,
		callTimeout: callTimeout,
		url:         strings.TrimRight(toxiproxyURL, "/"),
		baseline:    map[string]fakeservers.KeepAlive{},
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// ToxiproxyURL is the Toxiproxy API the driver talks to.
func (d *FaultDriver) ToxiproxyURL() string { return d.url }

// CallTimeout is the bound on one call.
func (d *FaultDriver) CallTimeout() time.Duration { return d.callTimeout }

// Admin returns the admin client of a fake service, or nil when the service
// is not a poolproof fake service.
func (d *FaultDriver) Admin(service string) *fakeservers.AdminClient { return d.admins[service] }

// Apply performs one action.
func (d *FaultDriver) Apply(ctx context.Context, a harness.Action) error {
	if a.Service == "" {
		return fmt.Errorf("%w: Action.Service is empty: name the service (proxy) to act on, e.g. %q", harness.ErrInvalidAction, fakeservers.Payment)
	}
	switch a.Kind {
	case harness.ActionAddToxic:
		if a.Toxic == nil {
			return fmt.Errorf("%w: %s on %q: Action.Toxic is nil: give the toxic to add", harness.ErrInvalidAction, a.Kind, a.Service)
		}
		t, err := a.Toxic.Normalize()
		if err != nil {
			return fmt.Errorf("%s on %q: %w", a.Kind, a.Service, err)
		}
		return d.addToxic(ctx, a.Service, t)
	case harness.ActionRemoveToxic:
		if a.ToxicName == "" {
			return fmt.Errorf("%w: %s on %q: Action.ToxicName is empty: name the toxic to remove", harness.ErrInvalidAction, a.Kind, a.Service)
		}
		return d.removeToxic(ctx, a.Service, a.ToxicName)
	case harness.ActionDisableProxy:
		return d.setEnabled(ctx, a.Service, false)
	case harness.ActionEnableProxy:
		return d.setEnabled(ctx, a.Service, true)
	case harness.ActionSetHTTPFaults:
		if len(a.HTTPFaults) == 0 {
			return fmt.Errorf("%w: %s on %q: Action.HTTPFaults is empty: give at least one fault, or use %s to remove them", harness.ErrInvalidAction, a.Kind, a.Service, harness.ActionClearHTTPFaults)
		}
		for i, f := range a.HTTPFaults {
			if f.Kind == "" {
				return fmt.Errorf("%w: %s on %q: Action.HTTPFaults[%d].Kind is empty", harness.ErrInvalidAction, a.Kind, a.Service, i)
			}
		}
		return d.adminCall(ctx, a.Service, a.Kind, func(ctx context.Context, c *fakeservers.AdminClient) error {
			return c.SetFaults(ctx, a.HTTPFaults...)
		})
	case harness.ActionClearHTTPFaults:
		return d.adminCall(ctx, a.Service, a.Kind, func(ctx context.Context, c *fakeservers.AdminClient) error {
			return c.ClearFaults(ctx)
		})
	case harness.ActionSetKeepAlive:
		if a.KeepAlive == nil {
			return fmt.Errorf("%w: %s on %q: Action.KeepAlive is nil: give the keep-alive policy", harness.ErrInvalidAction, a.Kind, a.Service)
		}
		ka := *a.KeepAlive
		return d.adminCall(ctx, a.Service, a.Kind, func(ctx context.Context, c *fakeservers.AdminClient) error {
			return c.SetKeepAlive(ctx, ka)
		})
	case harness.ActionSetProtocol:
		var h2 bool
		switch a.Protocol {
		case harness.ProtocolHTTP1:
		case harness.ProtocolHTTP2:
			h2 = true
		default:
			return fmt.Errorf("%w: %s on %q: Action.Protocol %q: want %q or %q", harness.ErrInvalidAction, a.Kind, a.Service, a.Protocol, harness.ProtocolHTTP1, harness.ProtocolHTTP2)
		}
		return d.adminCall(ctx, a.Service, a.Kind, func(ctx context.Context, c *fakeservers.AdminClient) error {
			return c.SetHTTP2(ctx, h2)
		})
	case "":
		return fmt.Errorf("%w: Action.Kind is empty: want one of %s", harness.ErrInvalidAction, strings.Join(actionKinds, ", "))
	default:
		return fmt.Errorf("%w: Action.Kind %q is unknown: want one of %s", harness.ErrInvalidAction, a.Kind, strings.Join(actionKinds, ", "))
	}
}

var actionKinds = []string{
	harness.ActionAddToxic, harness.ActionRemoveToxic, harness.ActionDisableProxy, harness.ActionEnableProxy,
	harness.ActionSetHTTPFaults, harness.ActionClearHTTPFaults, harness.ActionSetKeepAlive, harness.ActionSetProtocol,
}

// Reset returns every proxy and fake service to a fault-free state: Toxiproxy
// removes every toxic and re-enables every proxy, and each fake service drops
// its HTTP faults, gets its baseline keep-alive back and offers HTTP/1.1
// only (a run on HTTP/2 asks for it). It goes on after a failure, so that as
// much as possible is reset, and returns every error.
func (d *FaultDriver) Reset(ctx context.Context) error {
	var errs []error
	if err := d.toxiproxyCall(ctx, "reset", func(c *toxiclient.Client) error { return c.ResetState() }); err != nil {
		errs = append(errs, err)
	}
	for _, svc := range d.adminServices() {
		ka := d.baseline[svc]
		err := d.adminCall(ctx, svc, "reset", func(ctx context.Context, c *fakeservers.AdminClient) error {
			return errors.Join(c.ClearFaults(ctx), c.SetKeepAlive(ctx, ka), c.SetHTTP2(ctx, false))
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CreateProxy creates a Toxiproxy proxy through the API and returns the
// address it actually listens on (listen may use port 0).
func (d *FaultDriver) CreateProxy(ctx context.Context, name, listen, upstream string) (string, error) {
	if name == "" || listen == "" || upstream == "" {
		return "", fmt.Errorf("%w: create proxy: name %q, listen %q and upstream %q must all be set", harness.ErrInvalidAction, name, listen, upstream)
	}
	var addr string
	err := d.toxiproxyCall(ctx, "create proxy "+name, func(c *toxiclient.Client) error {
		p, err := c.CreateProxy(name, listen, upstream)
		if err != nil {
			return err
		}
		addr = p.Listen
		return nil
	})
	if status(err) == http.StatusConflict {
		return "", fmt.Errorf("%w: Toxiproxy at %s already has a proxy %q: delete it or pick another name: %w", harness.ErrProxyExists, d.url, name, err)
	}
	if err != nil {
		return "", err
	}
	return addr, nil
}

// DeleteProxy deletes a Toxiproxy proxy, closing its live connections.
func (d *FaultDriver) DeleteProxy(ctx context.Context, name string) error {
	return d.toxiproxyCall(ctx, "delete proxy "+name, func(c *toxiclient.Client) error {
		p, err := d.proxy(c, name)
		if err != nil {
			return err
		}
		return p.Delete()
	})
}

// ProxyState is what Toxiproxy reports about one proxy.
type ProxyState struct {
	Name     string          `json:"name"`
	Listen   string          `json:"listen"`
	Upstream string          `json:"upstream"`
	Enabled  bool            `json:"enabled"`
	Toxics   []harness.Toxic `json:"toxics"`
}

// Proxy reads one proxy's state, toxics included, from the Toxiproxy API.
func (d *FaultDriver) Proxy(ctx context.Context, name string) (ProxyState, error) {
	var st ProxyState
	err := d.toxiproxyCall(ctx, "show proxy "+name, func(c *toxiclient.Client) error {
		p, err := d.proxy(c, name)
		if err != nil {
			return err
		}
		st = ProxyState{Name: p.Name, Listen: p.Listen, Upstream: p.Upstream, Enabled: p.Enabled}
		for _, t := range p.ActiveToxics {
			st.Toxics = append(st.Toxics, harness.Toxic{Name: t.Name, Type: t.Type, Stream: t.Stream, Toxicity: t.Toxicity, Attributes: t.Attributes})
		}
		return nil
	})
	return st, err
}

func (d *FaultDriver) addToxic(ctx context.Context, service string, t harness.Toxic) error {
	return d.toxiproxyCall(ctx, "add toxic "+t.Name+" to "+service, func(c *toxiclient.Client) error {
		p, err := d.proxy(c, service)
		if err != nil {
			return err
		}
		_, err = p.AddToxic(t.Name, t.Type, t.Stream, t.Toxicity, toxiclient.Attributes(t.Attributes))
		switch status(err) {
		case 0:
			return err
		case http.StatusConflict:
			return fmt.Errorf("%w: proxy %q already has a toxic %q: remove it first or give Toxic.Name another name: %w", harness.ErrToxicExists, service, t.Name, err)
		case http.StatusBadRequest:
			return fmt.Errorf("%w: Toxiproxy refused toxic %q (type %q, attributes %v): check Toxic.Type and Toxic.Attributes: %w", harness.ErrInvalidAction, t.Name, t.Type, t.Attributes, err)
		default:
			return err
		}
	})
}

func (d *FaultDriver) removeToxic(ctx context.Context, service, name string) error {
	return d.toxiproxyCall(ctx, "remove toxic "+name+" from "+service, func(c *toxiclient.Client) error {
		p, err := d.proxy(c, service)
		if err != nil {
			return err
		}
		err = p.RemoveToxic(name)
		if status(err) == http.StatusNotFound {
			return fmt.Errorf("%w: proxy %q has no toxic %q (Action.ToxicName): it was never added or is already removed: %w", harness.ErrUnknownToxic, service, name, err)
		}
		return err
	})
}

func (d *FaultDriver) setEnabled(ctx context.Context, service string, enabled bool) error {
	op := "disable proxy " + service
	if enabled {
		op = "enable proxy " + service
	}
	return d.toxiproxyCall(ctx, op, func(c *toxiclient.Client) error {
		p, err := d.proxy(c, service)
		if err != nil {
			return err
		}
		if enabled {
			return p.Enable()
		}
		return p.Disable()
	})
}

// proxy fetches a proxy handle, turning Toxiproxy's 404 into ErrUnknownService.
func (d *FaultDriver) proxy(c *toxiclient.Client, service string) (*toxiclient.Proxy, error) {
	p, err := c.Proxy(service)
	if status(err) == http.StatusNotFound {
		return nil, d.unknownService(service, err)
	}
	return p, err
}

func (d *FaultDriver) unknownService(service string, cause error) error {
	known := ""
	if svcs := d.adminServices(); len(svcs) > 0 {
		known = " (known fake services: " + strings.Join(svcs, ", ") + ")"
	}
	err := fmt.Errorf("%w: Toxiproxy at %s has no proxy named %q (Action.Service)%s", harness.ErrUnknownService, d.url, service, known)
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

// adminCall runs one admin API call bounded by callTimeout. A service without
// an admin client is either unknown (Toxiproxy has no such proxy either) or
// not a fake service, and the two get different errors.
func (d *FaultDriver) adminCall(ctx context.Context, service, op string, fn func(context.Context, *fakeservers.AdminClient) error) error {
	c, ok := d.admins[service]
	if !ok || c == nil {
		if _, err := d.Proxy(ctx, service); err != nil {
			return fmt.Errorf("%s on %q: %w", op, service, err)
		}
		return fmt.Errorf("%s on %q: %w: HTTP faults and keep-alive need a poolproof fake service's admin API", op, service, harness.ErrNoServerTruth)
	}
	ctx, cancel := context.WithTimeout(ctx, d.callTimeout)
	defer cancel()
	// Idle admin connections would look like pooled connections of the
	// client under test to a goroutine leak check: drop them after use.
	defer c.Close()
	if err := fn(ctx, c); err != nil {
		return fmt.Errorf("%s on %q: %w", op, service, err)
	}
	return nil
}

// toxiproxyCall runs fn, which uses the context-less Toxiproxy client, and
// stops waiting for it at ctx's end or after callTimeout.
func (d *FaultDriver) toxiproxyCall(ctx context.Context, op string, fn func(*toxiclient.Client) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("toxiproxy API %s: %s: not started: %w", d.url, op, err)
	}
	// The closure's name, toxiproxyCall.func1, marks an abandoned call's
	// goroutine in environmentFunctions.
	err, abandoned := bounded.Call(ctx, d.callTimeout, 0, func(context.Context) error { return fn(d.toxiproxy) })
	switch {
	case abandoned:
		return fmt.Errorf("toxiproxy API %s: %s: no answer within %v (is Toxiproxy overloaded or hung?): %w", d.url, op, d.callTimeout, err)
	case err != nil:
		return fmt.Errorf("toxiproxy API %s: %s: %w", d.url, op, err)
	}
	return nil
}

func (d *FaultDriver) adminServices() []string {
	out := make([]string, 0, len(d.admins))
	for svc, c := range d.admins {
		if c != nil {
			out = append(out, svc)
		}
	}
	slices.Sort(out)
	return out
}

// status is the HTTP status of a Toxiproxy API error, 0 when err is not one.
func status(err error) int {
	var apiErr *toxiclient.ApiError
	if errors.As(err, &apiErr) {
		return apiErr.Status
	}
	return 0
}
