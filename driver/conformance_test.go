package driver_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/driver"
	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/env"
	"github.com/poolproof/poolproof/internal/drivertest"
)

// shipped is a driver this repository ships, or documents.
type shipped struct {
	name     string
	cmd      []string
	contract string // "" holds it to the default contract
}

// interpreters run the drivers of drivers/<folder>/<name>.<ext>, each
// beside its <name>.contract.json.
var interpreters = map[string]struct{ ext, path string }{
	"python": {".py", "/usr/bin/python3"},
	"node":   {".js", "/usr/bin/node"},
}

// shippedDrivers lists the Go driver, every driver of drivers/ whose
// interpreter this machine has, and the complete driver of
// docs/driver-protocol.md.
func shippedDrivers(t *testing.T) []shipped {
	t.Helper()
	out := []shipped{{name: "go", cmd: []string{drivertest.GoDriver(t)}, contract: "../drivers/go/contract.json"}}
	for folder, in := range interpreters {
		contracts, err := filepath.Glob(filepath.Join("..", "drivers", folder, "*.contract.json"))
		require.NoError(t, err)
		for _, c := range contracts {
			name := strings.TrimSuffix(filepath.Base(c), ".contract.json")
			if _, err := os.Stat(in.path); err != nil {
				t.Logf("%s/%s not checked: %v", folder, name, err)
				continue
			}
			script := filepath.Join(filepath.Dir(c), name+in.ext)
			require.FileExists(t, script, "a contract file names its driver: %s", c)
			out = append(out, shipped{name: folder + "/" + name, cmd: []string{in.path, script}, contract: c})
		}
	}
	doc, err := os.ReadFile("../docs/driver-protocol.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```python\n(.*?)```").FindSubmatch(doc)
	require.NotNil(t, blocks, "docs/driver-protocol.md holds a complete driver")
	if _, err := exec.LookPath("python3"); err == nil {
		example := filepath.Join(t.TempDir(), "example_driver.py")
		require.NoError(t, os.WriteFile(example, blocks[1], 0o600))
		py, _ := exec.LookPath("python3")
		out = append(out, shipped{name: "docs/driver-protocol.md", cmd: []string{py, example}})
	}
	return out
}

// TestShippedDriversKeepToTheProtocol holds every driver to
// docs/driver-protocol.md: init_ok; concurrent calls to every service
// answered with the body the server sent; the headers it was given
// reaching the server (an Idempotency-Key replays a charge) and the
// response's coming back; a refused connection classed connect; close
// releasing every connection; its process measured; exit 0 at shutdown;
// nothing left running.
func TestShippedDriversKeepToTheProtocol(t *testing.T) {
	drivers := shippedDrivers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e, err := env.NewEmbedded(ctx)
	require.NoError(t, err)
	defer e.Close()
	base := map[string]string{}
	for _, s := range e.Services() {
		base[s.Name] = s.BaseURL
	}

	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			require.NoError(t, e.Reset(ctx, 1))
			profile := harness.DefaultProfile()
			if d.contract != "" {
				profile, err = harness.LoadProfile(d.contract)
				require.NoError(t, err)
			}
			p, err := driver.Start(ctx, d.cmd, e.Services(), profile)
			require.NoError(t, err)
			defer p.Close()
			assert.NotEmpty(t, p.Info().Driver, "init_ok names the driver")

			// Concurrent calls to every service.
			var wg sync.WaitGroup
			for i := range 8 {
				for _, req := range []*http.Request{
					newRequest(t, http.MethodGet, base[fakeservers.Inventory]+fmt.Sprintf("/v1/items/%d", i), "", d.name, "get", i),
					newRequest(t, http.MethodPost, base[fakeservers.Payment]+fakeservers.RouteCharges, fmt.Sprintf(`{"order_id":"o-%d","amount":100,"currency":"EUR"}`, i), d.name, "charge", i),
					newRequest(t, http.MethodPost, base[fakeservers.Notification]+fakeservers.RouteNotifications, `{"recipient":"c-1","channel":"email","message":"hi"}`, d.name, "notify", i),
				} {
					wg.Go(func() {
						resp, err := p.Do(req)
						if !assert.NoError(t, err, "%s %s", req.Method, req.URL) {
							return
						}
						assert.Less(t, resp.StatusCode, 300, "%s %s", req.Method, req.URL)
						rep := resp.Body.(harness.ReportedBody).BodyReport()
						assert.Equal(t, fakeservers.DigestPrefix+hex.EncodeToString(rep.SHA256[:]), resp.Header.Get(fakeservers.HeaderBodyDigest),
							"body_sha256 is the SHA-256 of the body the server sent (%d bytes)", rep.Len)
					})
				}
			}
			wg.Wait()

			// A charge repeated with its Idempotency-Key is replayed: the
			// header reached the server, the server's answer came back.
			var replayed []string
			for i := range 2 {
				req := newRequest(t, http.MethodPost, base[fakeservers.Payment]+fakeservers.RouteCharges, `{"order_id":"o-keyed","amount":100,"currency":"EUR"}`, d.name, "keyed", i)
				req.Header.Set(fakeservers.HeaderIdempotencyKey, "key-"+d.name)
				resp, err := p.Do(req)
				require.NoError(t, err)
				replayed = append(replayed, resp.Header.Get("Idempotent-Replayed"))
			}
			assert.Equal(t, []string{"", "true"}, replayed, "the second charge with the same Idempotency-Key is a replay")
			st, err := e.Observe(ctx, fakeservers.Payment)
			require.NoError(t, err)
			assert.Equal(t, 1, st.Charges["o-keyed"])
			seen := map[string]bool{}
			for _, r := range st.Requests {
				seen[r.RequestID] = true
			}
			for i := range 8 {
				assert.True(t, seen[requestID(d.name, "charge", i)], "X-Request-ID %s reached the server unchanged", requestID(d.name, "charge", i))
			}

			// A refused connection is classed connect (after close, so
			// that no pooled connection is tried first and found reset).
			p.CloseIdleConnections()
			require.NoError(t, e.Faults().Apply(ctx, harness.DisableProxy(fakeservers.Inventory)))
			_, err = p.Do(newRequest(t, http.MethodGet, base[fakeservers.Inventory]+"/v1/items/1", "", d.name, "refused", 0))
			require.NoError(t, e.Faults().Apply(ctx, harness.EnableProxy(fakeservers.Inventory)))
			var ce *driver.CallError
			if assert.True(t, errors.As(err, &ce), "an error result, got %v", err) {
				assert.Equal(t, harness.ClassConnRefused, ce.Class, "%s", ce.Message)
			}

			// close releases every connection; the process is measured.
			p.CloseIdleConnections()
			require.NoError(t, p.Err())
			for _, s := range e.Services() {
				assert.Eventually(t, func() bool {
					st, err := e.Observe(ctx, s.Name)
					return err == nil && st.OpenConnections == 0
				}, 5*time.Second, 20*time.Millisecond, "%s sees every connection closed after close_ok", s.Name)
			}
			pl := p.ProcessLeaks()
			assert.True(t, pl.Measured, pl.Err)

			assert.NoError(t, p.Close(), "exit 0 at shutdown")
			drivertest.RequireNothingLeft(t, p.PID())
			if t.Failed() {
				t.Logf("its stderr ends:\n%s", pl.Stderr)
			}
		})
	}
}

func requestID(driver, what string, i int) string {
	return fmt.Sprintf("conf-%s-%s-%d", driver, what, i)
}

func newRequest(t *testing.T, method, url, body, driver, what string, i int) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body == "" {
		req.Body = http.NoBody
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(fakeservers.HeaderRequestID, requestID(driver, what, i))
	return req
}
