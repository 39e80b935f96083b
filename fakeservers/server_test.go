package fakeservers

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"unknown service", Config{Service: "billing"}, `Service: "billing" is not one of payment, inventory, notification`},
		{"negative latency", Config{Service: Payment, Latency: -time.Second}, "Latency: must not be negative"},
		{"negative jitter", Config{Service: Payment, Jitter: -1}, "Jitter: must not be negative"},
		{"tls and h2c", Config{Service: Payment, TLS: true, H2C: true}, "H2C:"},
		{"negative idle timeout", Config{Service: Payment, KeepAlive: KeepAlive{IdleTimeout: -1}}, "KeepAlive.idle_timeout"},
		{"negative max requests", Config{Service: Payment, KeepAlive: KeepAlive{MaxRequestsPerConn: -2}}, "KeepAlive.max_requests_per_conn"},
		{"bad listen address", Config{Service: Payment, Listen: "127.0.0.1:notaport"}, `Listen "127.0.0.1:notaport"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.cfg)
			require.Error(t, err)
			assert.Nil(t, s)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
	_, err := Start(context.Background(), Config{Service: "x"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestServicesAnswerWithDigestedBodies(t *testing.T) {
	tests := []struct {
		service, method, path, body string
		status                      int
		minBody                     int
	}{
		{Payment, "POST", "/v1/charges", `{"order_id":"o-1","amount":1299,"currency":"eur"}`, 201, 100},
		{Inventory, "GET", "/v1/items/SKU-42", "", 200, 300},
		{Inventory, "POST", "/v1/reservations", `{"sku":"SKU-42","quantity":2,"order_id":"o-1"}`, 201, 150},
		{Notification, "POST", "/v1/notifications", `{"channel":"email","recipient":"a@example.com","template":"receipt","order_id":"o-1"}`, 202, 150},
		{Notification, "GET", "/v1/catalog?size=5000", "", 200, 5000},
		{Payment, "GET", "/v1/nothing", "", 404, 10},
		{Payment, "GET", "/v1/charges", "", 405, 10},
		{Payment, "POST", "/v1/charges", `{"order_id":"o-1","amount":0,"currency":"EUR"}`, 400, 10},
		{Inventory, "GET", "/v1/catalog?size=1", "", 400, 10},
	}
	servers := map[string]*Server{}
	for _, svc := range Services {
		servers[svc] = start(t, Config{Service: svc})
	}
	for _, tt := range tests {
		t.Run(tt.service+" "+tt.method+" "+tt.path, func(t *testing.T) {
			s := servers[tt.service]
			r := do(t, client(t, s), tt.method, s.URL()+tt.path, tt.body)
			require.NoError(t, r.readErr)
			assert.Equal(t, tt.status, r.resp.StatusCode, string(r.body))
			assert.GreaterOrEqual(t, len(r.body), tt.minBody)
			assert.True(t, json.Valid(r.body), "body is JSON: %s", r.body)
			assert.True(t, VerifyDigest(r.resp.Header.Get(HeaderBodyDigest), r.body))
		})
	}
	t.Run("catalog is exactly the size asked", func(t *testing.T) {
		s := servers[Payment]
		for _, size := range []int{64, 65, 1000, 100_000} {
			r := do(t, client(t, s), "GET", s.URL()+"/v1/catalog?size="+strconv.Itoa(size), "")
			assert.Len(t, r.body, size)
			assert.True(t, json.Valid(r.body))
		}
	})
	t.Run("item bodies are stable per sku", func(t *testing.T) {
		s := servers[Inventory]
		a := do(t, client(t, s), "GET", s.URL()+"/v1/items/A-1", "")
		b := do(t, client(t, s), "GET", s.URL()+"/v1/items/A-1", "")
		c := do(t, client(t, s), "GET", s.URL()+"/v1/items/B-2", "")
		assert.Equal(t, a.body, b.body)
		assert.NotEqual(t, a.body, c.body)
	})
}

func TestVerifyDigest(t *testing.T) {
	body := []byte(`{"ok":true}`)
	good := BodyDigest(body)
	tests := []struct {
		name   string
		header string
		body   []byte
		want   bool
	}{
		{"whole body", good, body, true},
		{"upper-case hex", "sha256=" + upper(good[7:]), body, true},
		{"truncated body", good, body[:5], false},
		{"empty header", "", body, false},
		{"other algorithm", "md5=" + good[7:], body, false},
		{"short hex", good[:20], body, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, VerifyDigest(tt.header, tt.body))
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestIdempotencyKeyCreatesOneCharge(t *testing.T) {
	s := start(t, Config{Service: Payment})
	c := client(t, s)
	body := `{"order_id":"order-7","amount":500,"currency":"EUR"}`
	var ids []string
	for range 3 {
		r := do(t, c, "POST", s.URL()+"/v1/charges", body, HeaderIdempotencyKey, "key-7")
		require.Equal(t, http.StatusCreated, r.resp.StatusCode)
		var ch Charge
		require.NoError(t, json.Unmarshal(r.body, &ch))
		ids = append(ids, ch.ID)
	}
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, ids[0], ids[2])
	// Without a key every POST is a new charge: the duplicate the checks hunt.
	do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"order-8","amount":500,"currency":"EUR"}`)
	do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"order-8","amount":500,"currency":"EUR"}`)
	// Reusing a key for another charge is refused rather than silently merged.
	r := do(t, c, "POST", s.URL()+"/v1/charges", `{"order_id":"order-9","amount":1,"currency":"EUR"}`, HeaderIdempotencyKey, "key-7")
	assert.Equal(t, http.StatusUnprocessableEntity, r.resp.StatusCode)

	st := s.Stats()
	assert.Equal(t, map[string]int{"order-7": 1, "order-8": 2}, st.Charges)
	got := do(t, c, "GET", s.URL()+"/v1/charges/"+ids[0], "")
	assert.Equal(t, http.StatusOK, got.resp.StatusCode)
	assert.Contains(t, string(got.body), `"order_id":"order-7"`)
	assert.Equal(t, "order-7", st.Requests[0].OrderID)
}

func TestAttemptsPerRequestID(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	c := client(t, s)
	url := s.URL() + "/v1/items/SKU-1"
	var seen []string
	for _, id := range []string{"a", "a", "b", "a", ""} {
		var r reply
		if id == "" {
			r = do(t, c, "GET", url, "")
		} else {
			r = do(t, c, "GET", url, "", HeaderRequestID, id)
		}
		seen = append(seen, r.resp.Header.Get(HeaderAttempt))
	}
	assert.Equal(t, []string{"1", "2", "1", "3", "1"}, seen)
	st := s.Stats()
	require.Len(t, st.Requests, 5)
	for i, want := range []struct {
		id      string
		attempt int
	}{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"", 1}} {
		rec := st.Requests[i]
		assert.Equal(t, want.id, rec.RequestID)
		assert.Equal(t, want.attempt, rec.Attempt)
		assert.Equal(t, "GET", rec.Method)
		assert.Equal(t, RouteItem, rec.Route)
		assert.Equal(t, 200, rec.Status)
		assert.NotZero(t, rec.ConnID)
		assert.False(t, rec.Finished.Before(rec.Arrived))
	}

	s.Reset()
	assert.Empty(t, s.Stats().Requests)
	r := do(t, c, "GET", url, "", HeaderRequestID, "a")
	assert.Equal(t, "1", r.resp.Header.Get(HeaderAttempt), "reset forgets attempt numbering")
}

func TestLatencyAndJitter(t *testing.T) {
	s := start(t, Config{Service: Inventory, Latency: 60 * time.Millisecond, Jitter: 20 * time.Millisecond})
	c := client(t, s)
	do(t, c, "GET", s.URL()+"/v1/items/warm", "")
	t0 := time.Now()
	do(t, c, "GET", s.URL()+"/v1/items/x", "")
	assert.GreaterOrEqual(t, time.Since(t0), 60*time.Millisecond)
	for _, rec := range s.Stats().Requests {
		assert.GreaterOrEqual(t, rec.Finished.Sub(rec.Arrived), 60*time.Millisecond)
	}
}

// A reverse proxy's upstream requests are told apart by how they treat
// their connection: nginx's default speaks HTTP/1.0 and closes.
func TestRequestsRecordHowTheyTreatTheirConnection(t *testing.T) {
	s := start(t, Config{Service: Inventory})
	for _, raw := range []string{
		"GET /v1/items/A-1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: keep\r\n\r\n",
		"GET /v1/items/A-1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: close11\r\nConnection: close\r\n\r\n",
		"GET /v1/items/A-1 HTTP/1.0\r\nHost: x\r\nX-Request-ID: close10\r\nConnection: close\r\n\r\n",
		"GET /v1/items/A-1 HTTP/1.0\r\nHost: x\r\nX-Request-ID: keep10\r\nConnection: keep-alive\r\n\r\n",
	} {
		c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Write([]byte(raw))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.Close()
	}
	got := map[string][2]bool{}
	for _, r := range s.Stats().Requests {
		got[r.RequestID] = [2]bool{r.HTTP10, r.Close}
	}
	assert.Equal(t, map[string][2]bool{
		"keep":    {false, false},
		"close11": {false, true},
		"close10": {true, true},
		"keep10":  {true, false},
	}, got)
}
