package pooledclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Pool is the registry of a program's downstream service clients, one Client
// per service, each with its own limits. Build it once at start-up.
type Pool struct {
	clients map[string]*Client
	names   []string
}

// NewPool builds one client per configuration. It refuses the whole set if
// any configuration is invalid or two share a name. It opens no connection:
// call Warm for that.
func NewPool(cfgs []Config, opts ...Option) (*Pool, error) {
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("pooledclient: NewPool: no service configured: %w", ErrInvalidConfig)
	}
	o := buildOptions(opts)
	p := &Pool{clients: make(map[string]*Client, len(cfgs))}
	for _, cfg := range cfgs {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		if _, dup := p.clients[cfg.Name]; dup {
			return nil, fmt.Errorf("pooledclient: %s: configured twice; give each service one Config: %w", cfg.Name, ErrInvalidConfig)
		}
		p.clients[cfg.Name] = nil
	}
	m, err := newMetrics(o.reg, o.namespace)
	if err != nil {
		return nil, fmt.Errorf("pooledclient: registering metrics: %w", err)
	}
	for _, cfg := range cfgs {
		p.clients[cfg.Name] = newClient(cfg, o, m)
		p.names = append(p.names, cfg.Name)
	}
	slices.Sort(p.names)
	return p, nil
}

// Client returns the client of one service.
func (p *Pool) Client(name string) (*Client, error) {
	c, ok := p.clients[name]
	if !ok {
		return nil, fmt.Errorf("pooledclient: service %q: %w; configured services: %s",
			name, ErrUnknownService, strings.Join(p.names, ", "))
	}
	return c, nil
}

// Services lists the configured service names, sorted.
func (p *Pool) Services() []string { return slices.Clone(p.names) }

// Warm pre-dials every service's MinConns connections.
func (p *Pool) Warm(ctx context.Context) error {
	var errs []error
	for _, n := range p.names {
		errs = append(errs, p.clients[n].Warm(ctx))
	}
	return errors.Join(errs...)
}

// CloseIdleConnections closes every service's idle connections.
func (p *Pool) CloseIdleConnections() {
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// Close closes every client.
func (p *Pool) Close() error {
	var errs []error
	for _, n := range p.names {
		errs = append(errs, p.clients[n].Close())
	}
	return errors.Join(errs...)
}
