package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/poolproof/poolproof/harness/env"
)

func init() {
	register(command{
		name:    "toxiproxy",
		summary: "run Toxiproxy's HTTP API (the same server the embedded environment uses) until SIGINT/SIGTERM",
		run:     runToxiproxy,
	})
}

// runToxiproxy serves Toxiproxy's API on -listen, prints "url=<base URL>" on
// stdout once it accepts connections, and stops every proxy and the API when
// ctx ends. It is what the docker images run, so a container needs nothing
// but this static binary.
func runToxiproxy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poolproof toxiproxy", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8474", "API address (host:port); proxies created through the API listen where they say")
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "poolproof toxiproxy: "+format+"\n", a...)
		return code
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(2, "%v", err)
	}

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	srv, err := env.StartToxiproxy(startCtx, *listen)
	cancel()
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintf(stdout, "url=%s\n", srv.URL())
	fmt.Fprintf(stderr, "poolproof toxiproxy: API on %s; SIGINT or SIGTERM to stop\n", srv.URL())
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fail(1, "close: %v", err)
	}
	return 0
}
