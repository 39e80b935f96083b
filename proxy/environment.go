package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/sbin"
)

// Errors Open returns. The first four are the user's to fix (the command
// line exits 2 on them, see Unusable).
var (
	// ErrUnknownKind: not one of Kinds.
	ErrUnknownKind = errors.New("unknown proxy")
	// ErrNotInstalled: the proxy's binary is not on this machine.
	ErrNotInstalled = errors.New("proxy not installed")
	// ErrInvalidConfig: the configuration cannot be read, or its
	// placeholders are wrong; the message names the file and line.
	ErrInvalidConfig = errors.New("invalid proxy configuration")
	// ErrConfigRejected: the proxy's own check refused the configuration;
	// the error's text is the proxy's message, pointing into the user's file.
	ErrConfigRejected = errors.New("proxy configuration rejected")
	// ErrStart: the configuration passed the proxy's check but the proxy
	// did not start listening.
	ErrStart = errors.New("proxy did not start")
)

// Unusable tells a proxy or configuration the user must fix from a failure
// while starting.
func Unusable(err error) bool {
	return errors.Is(err, ErrUnknownKind) || errors.Is(err, ErrNotInstalled) ||
		errors.Is(err, ErrInvalidConfig) || errors.Is(err, ErrConfigRejected)
}

// rejected is a configuration the proxy refused: its text is the proxy's
// own message.
type rejected struct{ msg string }

func (r *rejected) Error() string        { return r.msg }
func (r *rejected) Is(target error) bool { return target == ErrConfigRejected }

// DefaultReplicas is how many replicas each fronted service runs as.
const DefaultReplicas = 3

// Config says which proxy to start from which configuration.
type Config struct {
	// Kind is Nginx or HAProxy.
	Kind string
	// File is the user's configuration, with placeholders (see Template).
	File string
	// Replicas per fronted service (default DefaultReplicas).
	Replicas int
	// Binary is the proxy's executable (default: Kind on PATH, else /usr/sbin/Kind).
	Binary string
	// StartTimeout bounds the configuration check and each start, until
	// the proxy listens (default 10s); StopTimeout bounds each stop
	// (default 5s, twice over when the proxy must be killed).
	StartTimeout, StopTimeout time.Duration
	// EnvOptions go to the embedded environment behind the proxy (e.g.
	// env.WithSeed); the proxy sets plain HTTP and the replicas itself.
	EnvOptions []env.Option
}

// Environment is a reverse proxy between the client and the services: the
// embedded environment runs every service the proxy's configuration fronts
// as replicas (inventory-0, inventory-1, ...), each behind its own
// Toxiproxy proxy with its own server truth, and the proxy (nginx or
// HAProxy from the machine's packages) runs from the user's configuration
// with its upstream servers pointed at them. The client calls each fronted
// service at the proxy's listener. The proxy is restarted at every Reset,
// so no run inherits another's upstream connections or failed servers, and
// stopped, every process of it, by Close.
type Environment struct {
	cfg      Config
	flavor   flavor
	tmpl     *Template
	embedded *env.Embedded
	dir      string

	mu       sync.Mutex
	proc     *process
	listen   map[string]string // by fronted service
	conf     string            // the file the proxy runs
	rendered Rendered          // the user's configuration as the proxy reads it

	closeOnce sync.Once
	closeErr  error
}

var (
	_ harness.Environment = (*Environment)(nil)
	_ harness.Replicated  = (*Environment)(nil)
)

// Open reads and checks the configuration, starts the embedded
// environment with the fronted services as replicas, has the proxy check
// the rendered configuration (ErrConfigRejected carries its message) and
// starts it. On any failure everything started is stopped again. The
// caller must Close the result.
func Open(ctx context.Context, cfg Config) (_ *Environment, err error) {
	fl, ok := flavorOf(cfg.Kind)
	if !ok {
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownKind, cfg.Kind, strings.Join(Kinds, ", "))
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = DefaultReplicas
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.Binary, err = findBinary(cfg.Kind, cfg.Binary); err != nil {
		return nil, err
	}
	tmpl, err := ParseTemplate(cfg.File, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	e := &Environment{cfg: cfg, flavor: fl, tmpl: tmpl}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Close())
		}
	}()
	if e.dir, err = os.MkdirTemp("", "poolproof-"+cfg.Kind+"-"); err != nil {
		return nil, fmt.Errorf("%s: a folder for its run: %w", cfg.Kind, err)
	}
	opts := slices.Clone(cfg.EnvOptions)
	opts = append(opts, env.WithTLS(false))
	for _, svc := range tmpl.Services {
		opts = append(opts, env.WithReplicas(svc, cfg.Replicas))
	}
	if e.embedded, err = env.NewEmbedded(ctx, opts...); err != nil {
		return nil, fmt.Errorf("%s: the services behind it: %w", cfg.Kind, err)
	}
	if err := e.render(); err != nil {
		return nil, err
	}
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	if err := e.start(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func findBinary(kind, given string) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNotInstalled, given, err)
		}
		return given, nil
	}
	if p, err := sbin.LookPath(kind); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: %s is not on PATH nor in /usr/sbin: install it (Debian: apt-get install %s)", ErrNotInstalled, kind, kind)
}

// render picks listen addresses, renders the user's configuration with
// them and writes what the proxy reads.
func (e *Environment) render() error {
	listen := make(map[string]string, len(e.tmpl.Services))
	reps := make(map[string][]string, len(e.tmpl.Services))
	for _, svc := range e.tmpl.Services {
		addr, err := freeAddr()
		if err != nil {
			return fmt.Errorf("%s: a port to listen on for %s: %w", e.cfg.Kind, svc, err)
		}
		listen[svc] = addr
		for _, rep := range e.embedded.Replicas(svc) {
			reps[svc] = append(reps[svc], strings.TrimPrefix(rep.BaseURL, "http://"))
		}
	}
	r, err := e.tmpl.Render(Addresses{Listen: listen, Replicas: reps, TempDir: e.dir})
	if err != nil {
		return err
	}
	userConf := filepath.Join(e.dir, e.flavor.userFile)
	if err := os.WriteFile(userConf, []byte(r.Text), 0o600); err != nil {
		return fmt.Errorf("%s: %w", e.cfg.Kind, err)
	}
	conf, err := e.flavor.files(e.dir, userConf)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.listen, e.conf, e.rendered = listen, conf, r
	e.mu.Unlock()
	return nil
}

// check has the proxy test the configuration without running it.
func (e *Environment) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.cfg.Binary, e.flavor.check(e.dir, e.conf)...)
	cmd.Dir = e.dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: checking %s: no answer within %v: %w", e.cfg.Kind, e.cfg.File, e.cfg.StartTimeout, ctx.Err())
	}
	msg := e.message(string(out))
	if msg == "" {
		msg = fmt.Sprintf("%s -t: %v", e.cfg.Kind, err)
	}
	return &rejected{msg: msg}
}

// message is the proxy's complaint in out, on one line, pointing into the
// user's file, and said by the proxy ("nginx: [emerg] ...").
func (e *Environment) message(out string) string {
	msg := e.flavor.message(out)
	if msg == "" {
		return ""
	}
	e.mu.Lock()
	lines := e.rendered.Lines
	e.mu.Unlock()
	msg = pointIntoUserFile(msg, filepath.Join(e.dir, e.flavor.userFile), e.cfg.File, lines)
	if !strings.HasPrefix(msg, e.cfg.Kind+":") {
		msg = e.cfg.Kind + ": " + msg
	}
	return msg
}

// startAttempts bounds the starts with new ports when the ones picked were
// taken meanwhile.
const startAttempts = 3

// start runs the proxy until it listens on every fronted service's
// address, picking new addresses when the old ones were taken.
func (e *Environment) start(ctx context.Context) error {
	var last error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if attempt > 0 {
			if err := e.render(); err != nil {
				return err
			}
		}
		logPath := filepath.Join(e.dir, "output.log")
		_ = os.Remove(logPath)
		e.mu.Lock()
		conf := e.conf
		e.mu.Unlock()
		p, err := startProcess(e.cfg.Kind, e.cfg.Binary, e.dir, logPath, e.flavor.run(e.dir, conf))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrStart, err)
		}
		e.mu.Lock()
		addrs := make([]string, 0, len(e.listen))
		for _, svc := range e.tmpl.Services {
			addrs = append(addrs, e.listen[svc])
		}
		e.proc = p
		e.mu.Unlock()
		werr := p.waitListening(ctx, addrs, e.cfg.StartTimeout)
		if werr == nil {
			return nil
		}
		out := p.output()
		serr := p.stop(e.cfg.StopTimeout)
		msg := e.message(out)
		last = fmt.Errorf("%w: %s: %w", ErrStart, cmp.Or(msg, "no message"), errors.Join(werr, serr))
		if !strings.Contains(out, "in use") || ctx.Err() != nil {
			break
		}
	}
	return last
}

// Name is the proxy's kind: "nginx" or "haproxy".
func (e *Environment) Name() string { return e.cfg.Kind }

// Services lists the fronted services at the proxy's listener, in
// fakeservers.Services order.
func (e *Environment) Services() []harness.Service {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]harness.Service, 0, len(e.tmpl.Services))
	for _, svc := range e.tmpl.Services {
		out = append(out, harness.Service{Name: svc, BaseURL: "http://" + e.listen[svc]})
	}
	return out
}

// Replicas lists the replicas of a fronted service.
func (e *Environment) Replicas(service string) []harness.Service {
	return e.embedded.Replicas(service)
}

// Faults is the embedded environment's fault handle: an action naming a
// fronted service applies to each of its replicas, one naming a replica
// to it alone. The proxy itself is never faulted.
func (e *Environment) Faults() harness.Faults { return e.embedded.Faults() }

// Observe reads a replica's truth. A fronted service has none of its own:
// the client's connections end at the proxy, which no fake service sees.
func (e *Environment) Observe(ctx context.Context, service string) (fakeservers.Stats, error) {
	if slices.Contains(e.tmpl.Services, service) {
		return fakeservers.Stats{}, fmt.Errorf("observe %q: %w: the client's connections end at %s's listener; the server truth is its replicas' (%s to %s)",
			service, harness.ErrNoServerTruth, e.cfg.Kind, harness.ReplicaName(service, 0), harness.ReplicaName(service, e.cfg.Replicas-1))
	}
	return e.embedded.Observe(ctx, service)
}

// Reset stops the proxy, resets the services behind it and starts the
// proxy again: a run starts with no upstream connection and no replica
// marked failed.
func (e *Environment) Reset(ctx context.Context, seed int64) error {
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	var stopErr error
	if p != nil {
		stopErr = p.stop(e.cfg.StopTimeout)
	}
	resetErr := e.embedded.Reset(ctx, seed)
	return errors.Join(stopErr, resetErr, e.start(ctx))
}

// GoroutineIgnores are the embedded environment's and the goroutine that
// waits for the proxy's main process.
func (e *Environment) GoroutineIgnores() []string {
	return append(e.embedded.GoroutineIgnores(), "github.com/poolproof/poolproof/proxy.(*process).reap")
}

// Template is the configuration as read, with its fronted services.
func (e *Environment) Template() *Template { return e.tmpl }

// Dir is the folder the proxy runs in: its configuration, pid file and logs.
func (e *Environment) Dir() string { return e.dir }

// PID is the proxy's main process (nginx's master), which leads its
// process group; 0 when it is not running.
func (e *Environment) PID() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proc == nil || e.proc.exited() {
		return 0
	}
	return e.proc.pid()
}

// Close stops the proxy (every process of its group), then the services,
// and removes the proxy's folder. It is idempotent and safe on a
// half-opened environment.
func (e *Environment) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		e.mu.Lock()
		p := e.proc
		e.mu.Unlock()
		if p != nil {
			errs = append(errs, p.stop(e.cfg.StopTimeout))
		}
		if e.embedded != nil {
			errs = append(errs, e.embedded.Close())
		}
		if e.dir != "" {
			errs = append(errs, os.RemoveAll(e.dir))
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}
