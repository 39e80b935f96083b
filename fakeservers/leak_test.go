package fakeservers

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutines drives every kind of connection and fault,
// leaves a slow answer in flight and idle h2 and h1 connections open, then
// closes: nothing the server started may survive.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	for _, cfg := range []Config{
		{Service: Payment},
		{Service: Payment, TLS: true},
		{Service: Payment, H2C: true, KeepAlive: KeepAlive{IdleTimeout: Duration(time.Hour)}},
	} {
		t.Run(map[bool]string{true: "tls", false: "plain"}[cfg.TLS]+map[bool]string{true: "-h2c"}[cfg.H2C], func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := Start(ctx, cfg)
			require.NoError(t, err)

			tr := &http.Transport{ForceAttemptHTTP2: true}
			if cfg.TLS {
				tr.TLSClientConfig = tlsClientConfig(s)
			}
			if cfg.H2C {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetUnencryptedHTTP2(true)
			}
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			faults := [][]Fault{
				nil,
				{{Kind: FaultCutBody}},
				{{Kind: FaultCloseAfterHeaders}},
				{{Kind: FaultProcessThenFail}},
				{{Kind: FaultStatus, Status: 503}},
			}
			for _, f := range faults {
				require.NoError(t, s.SetFaults(f...))
				get(c, s.URL()+"/v1/catalog?size=4096")
			}
			require.NoError(t, s.SetFaults(Fault{Kind: FaultSlowBody, BytesPerSecond: 10}))
			var wg sync.WaitGroup
			wg.Go(func() { get(c, s.URL()+"/v1/catalog?size=100000") })
			require.Eventually(t, func() bool { return s.Stats().BusyConnections == 1 }, 5*time.Second, 5*time.Millisecond)

			require.NotEmpty(t, serverGoroutines(), "the probe sees the server's goroutines")
			require.NoError(t, s.Close())
			// Close waited: no server goroutine is left at this instant.
			assert.Empty(t, serverGoroutines())
			wg.Wait()
			tr.CloseIdleConnections()
		})
	}
}

// serverGoroutines lists goroutines running server code: net/http's
// connection and accept loops, and the fake service's handler.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range []string{"net/http.(*conn).serve(", "net/http.(*http2serverConn).serve(", "net/http.(*Server).Serve(", "fakeservers.(*Server).ServeHTTP("} {
			if strings.Contains(g, fn) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

func get(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}
