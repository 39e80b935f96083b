package env

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/poolproof/poolproof/docker"
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
)

// DockerLabel is the label every container and network of a docker
// environment carries, with the run id as its value, so that
// `docker ps -a --filter label=poolproof` finds anything a killed run left.
const DockerLabel = "poolproof"

// ErrDockerUnavailable is returned by NewDocker when no Docker daemon
// answers; tests branch on it to skip.
var ErrDockerUnavailable = errors.New("docker is not available")

// ryukEnv turns testcontainers' reaper off: its image (testcontainers/ryuk)
// must be pulled from a registry, which poolproof never needs. The
// environment removes what it made itself instead (Close, and on any failure
// of NewDocker).
const ryukEnv = "TESTCONTAINERS_RYUK_DISABLED"

const (
	caCertPath = "/ca.pem"
	caKeyPath  = "/ca-key.pem"
)

// Docker is the containerised environment: the three fake services and
// Toxiproxy as containers on one private Docker network, built from the
// images in docker/. Toxiproxy's API, each proxy and each admin API are
// published on 127.0.0.1 only; the client under test runs in this process
// and reaches the services through the proxies, with TLS end to end.
type Docker struct {
	cfg      config
	runID    string
	ca       *fakeservers.CA
	admins   map[string]*fakeservers.AdminClient
	adminURL map[string]string
	upstream map[string]string // host-mapped service ports, bypassing Toxiproxy
	toxiURL  string
	gate     *apiGate // set with WithToxiproxyImage, see there
	driver   *FaultDriver
	services []harness.Service
	images   dockerImages

	mu         sync.Mutex
	containers []testcontainers.Container
	network    *testcontainers.DockerNetwork

	closeOnce sync.Once
	closeErr  error
}

var (
	_ harness.Environment       = (*Docker)(nil)
	_ harness.ConnectionCounter = (*Docker)(nil)
	_ harness.IdleConnCloser    = (*Docker)(nil)
)

// NewDocker builds the static poolproof binary (go build, bounded by ctx)
// unless WithPoolproofBinary names one, builds the images from docker/ (once
// per binary: they are tagged by its content hash and kept), starts the three
// fake services, all signed by one CA generated here, and Toxiproxy on one
// new network, and creates one proxy per service through Toxiproxy's API.
//
// testcontainers' reaper (Ryuk) is turned off by setting
// TESTCONTAINERS_RYUK_DISABLED=true when it is unset, since its image would
// have to be pulled; in its place NewDocker removes every container and
// network it made when it fails or ctx is canceled half-way, and Close
// removes them after use. All carry the label DockerLabel=<RunID>, and
// DockerHostLabel. What runs of processes that died without Close (SIGKILL)
// left behind on this host is removed first (see reapOrphans).
//
// It returns an error wrapping ErrDockerUnavailable when no daemon answers.
func NewDocker(ctx context.Context, opts ...Option) (_ *Docker, err error) {
	cfg := newConfig(opts)
	if err := cfg.only(NameDocker, optSeed, optKeepAlive, optCallTimeout, optToxiproxyImage, optBinary, optStartTimeout, optLog, optAfterStart); err != nil {
		return nil, err
	}
	if err := cfg.validate(NameDocker); err != nil {
		return nil, err
	}
	if _, set := os.LookupEnv(ryukEnv); !set {
		// Read once by testcontainers on first use: it must be set before.
		_ = os.Setenv(ryukEnv, "true")
	}

	d := &Docker{
		cfg:      cfg,
		runID:    newRunID(),
		admins:   map[string]*fakeservers.AdminClient{},
		adminURL: map[string]string{},
		upstream: map[string]string{},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()

	if err := dockerHealth(ctx); err != nil {
		return nil, err
	}
	if _, err := reapOrphans(ctx, cfg.log); err != nil {
		// Leftovers of dead runs cost disk, not correctness: say so, go on.
		_, _ = fmt.Fprintf(cfg.log, "%v\n", err)
	}
	if d.images, err = buildImages(ctx, cfg); err != nil {
		return nil, fmt.Errorf("docker environment: %w", err)
	}
	if d.ca, err = fakeservers.NewCA(); err != nil {
		return nil, fmt.Errorf("docker environment: generating the CA: %w", err)
	}
	caKey, err := d.ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("docker environment: encoding the CA key: %w", err)
	}

	nw, err := tcnetwork.New(ctx, tcnetwork.WithLabels(runLabels(d.runID)))
	if nw != nil {
		d.mu.Lock()
		d.network = nw
		d.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("docker environment: creating the network: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	for i, name := range fakeservers.Services {
		g.Go(func() error {
			ka := cfg.keepAlive[name]
			cmd := []string{
				"-service", name,
				"-listen", "0.0.0.0:" + strconv.Itoa(docker.ServicePort),
				"-admin", "0.0.0.0:" + strconv.Itoa(docker.AdminPort),
				"-tls", "on",
				"-seed", strconv.FormatInt(cfg.seed+int64(i), 10),
				"-ca-cert", caCertPath, "-ca-key", caKeyPath,
				"-idle-timeout", time.Duration(ka.IdleTimeout).String(),
				"-read-header-timeout", time.Duration(ka.ReadHeaderTimeout).String(),
				"-max-requests-per-conn", strconv.Itoa(ka.MaxRequestsPerConn),
			}
			c, err := d.run(gctx, name, d.images.fakeserver, cmd, []int{docker.ServicePort, docker.AdminPort},
				testcontainers.ContainerFile{Reader: bytes.NewReader(d.ca.PEM()), ContainerFilePath: caCertPath, FileMode: 0o644},
				testcontainers.ContainerFile{Reader: bytes.NewReader(caKey), ContainerFilePath: caKeyPath, FileMode: 0o600},
			)
			if err != nil {
				return err
			}
			admin, err := hostEndpoint(gctx, c, docker.AdminPort)
			if err != nil {
				return fmt.Errorf("fake service %s: %w", name, err)
			}
			svc, err := hostEndpoint(gctx, c, docker.ServicePort)
			if err != nil {
				return fmt.Errorf("fake service %s: %w", name, err)
			}
			d.mu.Lock()
			d.adminURL[name] = "http://" + admin
			d.upstream[name] = svc
			d.mu.Unlock()
			return nil
		})
	}
	var toxi testcontainers.Container
	g.Go(func() error {
		ports := []int{docker.ToxiproxyPort}
		for _, name := range fakeservers.Services {
			ports = append(ports, docker.ProxyPorts[name])
		}
		var cmd []string
		if cfg.toxiproxyImage == "" {
			cmd = []string{"-listen", "0.0.0.0:" + strconv.Itoa(docker.ToxiproxyPort)}
		}
		var err error
		toxi, err = d.run(gctx, "toxiproxy", d.images.toxiproxy, cmd, ports)
		if err != nil {
			return err
		}
		api, err := hostEndpoint(gctx, toxi, docker.ToxiproxyPort)
		if err != nil {
			return fmt.Errorf("toxiproxy: %w", err)
		}
		d.toxiURL = "http://" + api
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("docker environment: %w", err)
	}

	readyCtx, cancel := context.WithTimeout(ctx, cfg.startTimeout)
	defer cancel()
	for _, name := range fakeservers.Services {
		d.admins[name] = fakeservers.NewAdminClient(d.adminURL[name])
		if err := waitReady(readyCtx, "fake service "+name+" admin API "+d.adminURL[name], func(ctx context.Context) error {
			c := d.admins[name]
			defer c.Close()
			return c.Health(ctx)
		}); err != nil {
			return nil, fmt.Errorf("docker environment: %w", err)
		}
	}
	if err := waitReady(readyCtx, "toxiproxy API "+d.toxiURL, func(ctx context.Context) error {
		return toxiproxyVersion(ctx, d.toxiURL)
	}); err != nil {
		return nil, fmt.Errorf("docker environment: %w", err)
	}

	driverURL := d.toxiURL
	if cfg.toxiproxyImage != "" {
		// Only our own Toxiproxy answers without keep-alive; the official
		// one would leave idle connections in http.DefaultTransport (which
		// Toxiproxy's client uses) that the goroutine leak check would blame
		// on a client under test sharing it. The gate closes them.
		if d.gate, err = startAPIGate(d.toxiURL); err != nil {
			return nil, fmt.Errorf("docker environment: %w", err)
		}
		driverURL = d.gate.URL()
	}
	d.driver = NewFaultDriver(driverURL, d.admins, cfg.callTimeout, WithBaselineKeepAlive(cfg.keepAlive))

	for _, name := range fakeservers.Services {
		port := docker.ProxyPorts[name]
		if _, err := d.driver.CreateProxy(ctx, name, "0.0.0.0:"+strconv.Itoa(port), name+":"+strconv.Itoa(docker.ServicePort)); err != nil {
			return nil, fmt.Errorf("docker environment: creating the Toxiproxy proxy for %s: %w", name, err)
		}
		addr, err := hostEndpoint(ctx, toxi, port)
		if err != nil {
			return nil, fmt.Errorf("docker environment: proxy %s: %w", name, err)
		}
		d.services = append(d.services, harness.Service{Name: name, BaseURL: "https://" + addr, CAs: d.ca.Pool(), CAPEM: d.ca.PEM()})
	}
	return d, nil
}

// run starts one container of this environment on its network, with the
// run's label and ports published on 127.0.0.1 only.
func (d *Docker) run(ctx context.Context, alias, image string, cmd []string, ports []int, files ...testcontainers.ContainerFile) (testcontainers.Container, error) {
	exposed := make([]string, 0, len(ports))
	for _, p := range ports {
		exposed = append(exposed, strconv.Itoa(p)+"/tcp")
	}
	loopback := mobynet.PortBinding{HostIP: loopbackV4}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:          image,
			Cmd:            cmd,
			Labels:         runLabels(d.runID),
			ExposedPorts:   exposed,
			Networks:       []string{d.network.Name},
			NetworkAliases: map[string][]string{d.network.Name: {alias}},
			Files:          files,
			HostConfigModifier: func(hc *container.HostConfig) {
				if hc.PortBindings == nil {
					hc.PortBindings = mobynet.PortMap{}
				}
				for _, p := range ports {
					port, _ := mobynet.PortFrom(uint16(p), mobynet.TCP)
					hc.PortBindings[port] = []mobynet.PortBinding{loopback}
				}
			},
		},
		Started: true,
		Logger:  tcLogger(d.cfg.log),
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	if c != nil {
		d.mu.Lock()
		d.containers = append(d.containers, c)
		d.mu.Unlock()
	}
	if err != nil {
		return nil, fmt.Errorf("starting container %s from %s: %w", alias, image, err)
	}
	if d.cfg.afterStart != nil {
		d.cfg.afterStart(d.runID, alias)
	}
	return c, nil
}

// hostEndpoint is "127.0.0.1:<host port>" of a container port.
func hostEndpoint(ctx context.Context, c testcontainers.Container, port int) (string, error) {
	p, err := c.MappedPort(ctx, strconv.Itoa(port)+"/tcp")
	if err != nil {
		return "", fmt.Errorf("host port of container port %d: %w", port, err)
	}
	return loopbackV4.String() + ":" + strconv.Itoa(int(p.Num())), nil
}

func tcLogger(w io.Writer) tclog.Logger {
	if w == io.Discard {
		return tclog.NewNoopLogger()
	}
	return writerLogger{w}
}

type writerLogger struct{ w io.Writer }

func (l writerLogger) Printf(format string, v ...any) { fmt.Fprintf(l.w, format+"\n", v...) }

// Name is "docker".
func (d *Docker) Name() string { return "docker" }

// RunID is the value of DockerLabel on every container and network of this
// environment.
func (d *Docker) RunID() string { return d.runID }

// Services lists the endpoints, through Toxiproxy, in fakeservers.Services order.
func (d *Docker) Services() []harness.Service { return slices.Clone(d.services) }

// Faults is the fault handle: the fault driver.
func (d *Docker) Faults() harness.Faults { return d.driver }

// Driver is the fault driver itself, for what a scenario never does:
// creating proxies, reading their state, reaching an admin API.
func (d *Docker) Driver() *FaultDriver { return d.driver }

// Seed is the seed the fake services were started with.
func (d *Docker) Seed() int64 { return d.cfg.seed }

// ToxiproxyURL is the host-mapped base URL of the Toxiproxy container's API.
func (d *Docker) ToxiproxyURL() string { return d.toxiURL }

// AdminURL is the host-mapped admin API base URL of one fake service, ""
// when unknown.
func (d *Docker) AdminURL(service string) string { return d.adminURL[service] }

// UpstreamAddr is the host-mapped host:port of one fake service itself,
// bypassing Toxiproxy ("" when unknown): for baselines and benchmarks only.
func (d *Docker) UpstreamAddr(service string) string { return d.upstream[service] }

// CA is the CA every fake service's certificate is signed by.
func (d *Docker) CA() *fakeservers.CA { return d.ca }

// Observe reads one service's server-side truth through its admin API. The
// timestamps in it come from the container's clock, which is the host's.
func (d *Docker) Observe(ctx context.Context, service string) (fakeservers.Stats, error) {
	return observeAdmin(ctx, d.admins, service, d.cfg.callTimeout)
}

// OpenConnections reads one service's open server-side connections; it
// makes Docker a ConnectionCounter.
func (d *Docker) OpenConnections(ctx context.Context, service string) (int, error) {
	return openConnsAdmin(ctx, d.admins, service, d.cfg.callTimeout)
}

// CloseIdleConns has one service close every connection with no request in
// flight, through its admin API; it makes Docker a harness.IdleConnCloser.
func (d *Docker) CloseIdleConns(ctx context.Context, service string) (fakeservers.IdleClose, error) {
	return closeIdleAdmin(ctx, d.admins, service, d.cfg.callTimeout)
}

// Reset removes every toxic and HTTP fault, re-enables every proxy, restores
// the start keep-alive policy and makes each service forget its history.
func (d *Docker) Reset(ctx context.Context, seed int64) error {
	return errors.Join(d.driver.Reset(ctx), resetAdmins(ctx, d.admins, seed, d.cfg.callTimeout))
}

// GoroutineIgnores: the servers run in containers, so the only environment
// goroutines in this process are fault-driver calls still waiting and the
// API gate of an official Toxiproxy image; the same stacks as the embedded
// environment's are ignored, since no client runs them.
func (d *Docker) GoroutineIgnores() []string { return environmentIgnores() }

// Close removes every container and the network of this environment (by
// its label, so a container whose creation was cut short goes too), and
// releases the admin clients. It is idempotent and safe on a half-built
// environment; it does not stop the proxies one by one, since removing the
// Toxiproxy container does.
func (d *Docker) Close() error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.gate != nil {
			errs = append(errs, d.gate.Close())
		}
		for _, c := range d.admins {
			c.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		errs = append(errs, removeLabeled(ctx, d.runID))
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}
