package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

func init() {
	register(command{
		name:    "fakeserver",
		summary: "run one fake service (payment, inventory or notification) until SIGINT/SIGTERM",
		run:     runFakeserver,
	})
}

// onOff is a flag that reads on/off (or true/false): "-tls on", "-tls=off".
// It takes a value, like the brief's "-tls on/off", so "-tls" alone is an error.
type onOff bool

func (b *onOff) String() string {
	if b != nil && bool(*b) {
		return "on"
	}
	return "off"
}

func (b *onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "1", "yes":
		*b = true
	case "off", "false", "0", "no":
		*b = false
	default:
		return fmt.Errorf("want on or off, got %q", s)
	}
	return nil
}

// runFakeserver starts a fake service, prints its addresses on stdout as
// key=value lines (service, url, admin_url, and ca when written) and serves
// until ctx ends, then closes every listener and connection.
func runFakeserver(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poolproof fakeserver", flag.ContinueOnError)
	tlsOn := onOff(true)
	var (
		service     = fs.String("service", fakeservers.Payment, "service to run: "+strings.Join(fakeservers.Services, ", "))
		listen      = fs.String("listen", "127.0.0.1:0", "service address (host:port)")
		admin       = fs.String("admin", "127.0.0.1:0", "admin API address (host:port); keep it on loopback")
		h2c         = fs.Bool("h2c", false, "serve plain-text HTTP/2 (prior knowledge) next to HTTP/1.1; needs -tls=off")
		noH2        = fs.Bool("disable-http2", false, "with TLS, offer HTTP/1.1 only")
		latency     = fs.Duration("latency", 0, "base latency added to every request")
		jitter      = fs.Duration("jitter", 0, "seeded uniform jitter in [0, jitter) added to the latency")
		seed        = fs.Int64("seed", 1, "seed of fault draws and jitter; same seed and requests replay the same faults")
		idle        = fs.Duration("idle-timeout", 0, "close connections idle this long (0: never)")
		readHeader  = fs.Duration("read-header-timeout", 0, "close connections whose request headers take longer (0: no limit)")
		maxRequests = fs.Int("max-requests-per-conn", 0, "close a connection after this many requests (0: no limit)")
		caOut       = fs.String("ca-out", "", "write the CA certificate (PEM) to this file")
		caKeyOut    = fs.String("ca-key-out", "", "write the CA private key (PEM) to this file, for -ca-cert/-ca-key of other instances")
		caCert      = fs.String("ca-cert", "", "sign with this CA certificate (PEM) instead of a new CA; needs -ca-key")
		caKey       = fs.String("ca-key", "", "private key (PEM) of -ca-cert")
	)
	fs.Var(&tlsOn, "tls", "serve HTTPS with a generated CA: on or off")
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "poolproof fakeserver: "+format+"\n", a...)
		return code
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(2, "%v", err)
	}
	if (*caCert == "") != (*caKey == "") {
		return fail(2, "-ca-cert and -ca-key go together")
	}
	if !bool(tlsOn) && (*caOut != "" || *caKeyOut != "") {
		return fail(2, "-ca-out and -ca-key-out need -tls=on")
	}

	cfg := fakeservers.Config{
		Service:      *service,
		Listen:       *listen,
		AdminListen:  *admin,
		TLS:          bool(tlsOn),
		H2C:          *h2c,
		DisableHTTP2: *noH2,
		Latency:      *latency,
		Jitter:       *jitter,
		Seed:         *seed,
		KeepAlive: fakeservers.KeepAlive{
			IdleTimeout:        fakeservers.Duration(*idle),
			ReadHeaderTimeout:  fakeservers.Duration(*readHeader),
			MaxRequestsPerConn: *maxRequests,
		},
	}
	if *caCert != "" {
		certPEM, err := os.ReadFile(*caCert)
		if err != nil {
			return fail(2, "-ca-cert: %v", err)
		}
		keyPEM, err := os.ReadFile(*caKey)
		if err != nil {
			return fail(2, "-ca-key: %v", err)
		}
		if cfg.CA, err = fakeservers.LoadCA(certPEM, keyPEM); err != nil {
			return fail(2, "-ca-cert/-ca-key: %v", err)
		}
	}

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	srv, err := fakeservers.Start(startCtx, cfg)
	cancel()
	if err != nil {
		if errors.Is(err, fakeservers.ErrInvalidConfig) {
			return fail(2, "%v", flagNames(err))
		}
		return fail(1, "%v", err)
	}
	code := 0
	if ca := srv.CA(); ca != nil {
		if err := writeCA(ca, *caOut, *caKeyOut); err != nil {
			code = fail(1, "%v", err)
		}
	}
	if code == 0 {
		fmt.Fprintf(stdout, "service=%s\nurl=%s\nadmin_url=%s\n", srv.Service(), srv.URL(), srv.AdminURL())
		if *caOut != "" {
			fmt.Fprintf(stdout, "ca=%s\n", *caOut)
		}
		fmt.Fprintf(stderr, "poolproof fakeserver: %s serving on %s (admin %s); SIGINT or SIGTERM to stop\n", srv.Service(), srv.URL(), srv.AdminURL())
		<-ctx.Done()
	}
	if err := srv.Close(); err != nil {
		return fail(1, "close: %v", err)
	}
	return code
}

func writeCA(ca *fakeservers.CA, certPath, keyPath string) error {
	if certPath != "" {
		if err := os.WriteFile(certPath, ca.PEM(), 0o644); err != nil {
			return fmt.Errorf("-ca-out: %w", err)
		}
	}
	if keyPath != "" {
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			return fmt.Errorf("-ca-key-out: %w", err)
		}
		if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			return fmt.Errorf("-ca-key-out: %w", err)
		}
	}
	return nil
}

// flagNames rewrites Config field names in start errors as the flags that set them.
func flagNames(err error) string {
	msg := strings.TrimPrefix(err.Error(), fakeservers.ErrInvalidConfig.Error()+": ")
	for field, flagName := range map[string]string{
		"Service:":                         "-service:",
		"Latency:":                         "-latency:",
		"Jitter:":                          "-jitter:",
		"H2C:":                             "-h2c:",
		"DisableHTTP2:":                    "-disable-http2:",
		"KeepAlive.idle_timeout:":          "-idle-timeout:",
		"KeepAlive.read_header_timeout:":   "-read-header-timeout:",
		"KeepAlive.max_requests_per_conn:": "-max-requests-per-conn:",
	} {
		if rest, ok := strings.CutPrefix(msg, field); ok {
			return flagName + rest
		}
	}
	return msg
}
