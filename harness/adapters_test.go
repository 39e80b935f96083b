package harness_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/fakeservers"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// netHTTPCall is the CallFunc a library built on net/http amounts to: it
// buffers the whole body and hands back its parts. corrupt, when set,
// changes a byte of every body, as a library reusing a buffer would.
func netHTTPCall(hc *http.Client, corrupt bool) harness.CallFunc {
	return func(ctx context.Context, method, url string, header http.Header, body []byte) (int, http.Header, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header = header
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, nil, err
		}
		if corrupt && len(b) > 0 {
			b[0] ^= 0xff
		}
		return resp.StatusCode, resp.Header, b, nil
	}
}

// callFuncFactory builds, per service, a CallFunc on its own *http.Client;
// with teardown it attaches the client's CloseIdleConnections. The clients
// are closed at cleanup whatever the run did, so a deliberate leak does not
// outlive its test.
func callFuncFactory(t *testing.T, teardown, corrupt bool) harness.ClientFactory {
	var (
		mu      sync.Mutex
		clients []*http.Client
	)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, hc := range clients {
			hc.CloseIdleConnections()
		}
	})
	return func(svc harness.Service) (harness.Client, error) {
		hc := &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 16)}
		mu.Lock()
		clients = append(clients, hc)
		mu.Unlock()
		call := netHTTPCall(hc, corrupt)
		if !teardown {
			return call, nil
		}
		return harness.AttachTeardown(call, hc.CloseIdleConnections, nil), nil
	}
}

func TestAdaptedClientsAreCertifiedAsAnyClient(t *testing.T) {
	env := newEmbeddedEnv(t)
	judged := append(check.Leaks(), check.IntegrityDigest{}, check.NoHang{})
	tests := []struct {
		name     string
		factory  harness.ClientFactory
		teardown []string // the methods teardown calls, per service
		mustFail string   // "" when every check must pass
		mayFail  []string // checks the same bug may fail as well
	}{
		{"an http.Transport through RoundTripperClient",
			func(svc harness.Service) (harness.Client, error) {
				return harness.RoundTripperClient(harnesstest.StdTransport(svc, 16)), nil
			}, []string{"CloseIdleConnections"}, "", nil},
		{"a CallFunc on net/http with its idle connections closed at teardown",
			callFuncFactory(t, true, false), []string{"CloseIdleConnections"}, "", nil},
		{"a CallFunc handing back corrupted bodies fails integrity",
			callFuncFactory(t, true, true), []string{"CloseIdleConnections"}, check.IDIntegrityDigest, nil},
		// Nothing closes its pool, as for a client with Do alone: the
		// servers close the idle connections, within the pool allowed to a
		// client that declares none (twice the callers), and that is no leak.
		{"a CallFunc whose pool nothing closes has it closed by the servers",
			callFuncFactory(t, false, false), []string{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := harness.Run(harnesstest.Ctx(t), env, tt.factory, harnesstest.ShortSpec("adapted", 7))
			require.NoError(t, err)
			require.NotEmpty(t, h.Calls)
			for _, c := range h.Calls {
				require.Positive(t, c.Status, "call %d: class %v err %q", c.Seq, c.Class, h.ErrorText(c))
				if tt.mustFail != check.IDIntegrityDigest {
					require.Equal(t, harness.DigestOK, c.Digest, "call %d: the X-Body-Digest header came through", c.Seq)
				}
			}
			perService := map[string][]string{}
			for _, c := range h.Teardown {
				perService[c.Service] = append(perService[c.Service], c.Method)
			}
			for _, svc := range h.Services {
				assert.Equal(t, tt.teardown, append([]string{}, perService[svc]...), "teardown of %s", svc)
			}
			for _, v := range harness.Judge(h, judged...) {
				if v.Check == tt.mustFail {
					assert.Equal(t, harness.StatusFail, v.Status, "%s", v)
					continue
				}
				if slices.Contains(tt.mayFail, v.Check) {
					continue
				}
				assert.Equal(t, harness.StatusPass, v.Status, "%s", v)
			}
		})
	}
}

func TestCallFuncTurnsTheRequestIntoTheCallAndTheAnswerIntoAResponse(t *testing.T) {
	var (
		gotMethod, gotURL string
		gotHeader         http.Header
		gotBody           []byte
	)
	answer := http.Header{fakeservers.HeaderBodyDigest: {"sha256=abc"}}
	call := harness.CallFunc(func(_ context.Context, method, url string, header http.Header, body []byte) (int, http.Header, []byte, error) {
		gotMethod, gotURL, gotHeader, gotBody = method, url, header, body
		header.Set("X-Library", "touched") // must not reach the harness's request
		return http.StatusCreated, answer, []byte("charged"), nil
	})
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/charges?x=1", strings.NewReader(`{"amount":5}`))
	require.NoError(t, err)
	req.Header.Set(fakeservers.HeaderRequestID, "pp-1")

	resp, err := call.Do(req)
	require.NoError(t, err)
	assert.Equal(t, http.MethodPost, gotMethod)
	assert.Equal(t, "http://127.0.0.1:1/charges?x=1", gotURL)
	assert.Equal(t, "pp-1", gotHeader.Get(fakeservers.HeaderRequestID))
	assert.Equal(t, `{"amount":5}`, string(gotBody))
	assert.Empty(t, req.Header.Get("X-Library"), "the function gets its own copy of the headers")

	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, "201 Created", resp.Status)
	assert.Equal(t, "sha256=abc", resp.Header.Get(fakeservers.HeaderBodyDigest))
	assert.Equal(t, int64(7), resp.ContentLength)
	assert.Same(t, req, resp.Request)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "charged", string(body))
	require.NoError(t, resp.Body.Close())
}

// poolError names its class, as a library's error may.
type poolError struct{}

func (poolError) Error() string          { return "all slots busy" }
func (poolError) PoolproofClass() string { return "pool_exhausted" }

func TestCallFuncErrorsAreTheFunctionsOrSayWhatToReturn(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		err       error
		wantIs    error
		wantClass harness.ErrorClass
		wantText  string
	}{
		{"a deadline passes through", 0, context.DeadlineExceeded, context.DeadlineExceeded, harness.ClassTimeout, ""},
		{"a classified error keeps its class", 0, poolError{}, poolError{}, harness.ClassPoolExhausted, ""},
		{"no status and no error", 0, nil, nil, harness.ClassOther, "returned status 0 and no error: return the response's status code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := harness.CallFunc(func(context.Context, string, string, http.Header, []byte) (int, http.Header, []byte, error) {
				return tt.status, nil, nil, tt.err
			})
			req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/items/1", nil)
			require.NoError(t, err)
			resp, err := call.Do(req)
			assert.Nil(t, resp)
			require.Error(t, err)
			if tt.wantIs != nil {
				assert.True(t, errors.Is(err, tt.wantIs), "%v", err)
			}
			assert.Equal(t, tt.wantClass, harness.Classify(err))
			assert.Contains(t, err.Error(), tt.wantText)
		})
	}
}

// resetRecorder is an environment that logs its resets, so a test sees
// where the client reset hook ran among them.
type resetRecorder struct {
	harness.Environment
	log *eventLog
}

func (r resetRecorder) Reset(ctx context.Context, seed int64) error {
	r.log.add("env reset")
	return r.Environment.Reset(ctx, seed)
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

func TestClientResetRunsBeforeEachScenarioAndItsErrorFailsThatScenario(t *testing.T) {
	log := &eventLog{}
	env := resetRecorder{Environment: newEmbeddedEnv(t), log: log}
	resets := 0
	hook := func(ctx context.Context) error {
		resets++
		log.add("client reset")
		if _, ok := ctx.Deadline(); !ok {
			return errors.New("the hook's context has no deadline")
		}
		if resets == 2 {
			return errors.New("the global pool is still draining")
		}
		return nil
	}
	factory := func(svc harness.Service) (harness.Client, error) {
		log.add("build " + svc.Name)
		return harnesstest.StdClientFactory(svc)
	}
	scenarios := []harness.Scenario{
		tinyScenario("one", 300*time.Millisecond), tinyScenario("two", 300*time.Millisecond), tinyScenario("three", 300*time.Millisecond),
	}
	for i := range scenarios {
		scenarios[i].Workload.Mix = harness.Mix{Inventory: 1}
	}
	cert, err := harness.Certify(harnesstest.Ctx(t), env, factory, harness.DefaultProfile(), scenarios, harness.WithClientReset(hook))
	require.NoError(t, err, "a failing hook fails its scenario, not the certification")

	assert.Equal(t, []string{
		"build inventory", "build payment", "build notification", // priming the client once
		"env reset", "client reset", "build inventory",
		"env reset", "client reset", // the hook failed: the scenario did not run
		"env reset", "client reset", "build inventory",
	}, log.all())

	require.Len(t, cert.Results, 3)
	assert.True(t, cert.Results[0].Passed(), "%v", cert.Results[0].Verdicts)
	assert.True(t, cert.Results[2].Passed(), "%v", cert.Results[2].Verdicts)
	two := cert.Results[1]
	assert.Nil(t, two.History)
	require.Len(t, two.Verdicts, 1)
	v := two.Verdicts[0]
	assert.Equal(t, harness.CheckRun, v.Check)
	assert.Equal(t, harness.StatusFail, v.Status)
	assert.Contains(t, v.Reason, "the client reset hook (WithClientReset) failed: the global pool is still draining")
	assert.Contains(t, two.Err, "WithClientReset")
	assert.False(t, cert.Passed())
}
