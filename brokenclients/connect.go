package brokenclients

import (
	"net"
	"net/http"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// brokenConnectTimeout is the connect timeout connect-timeout-unset
// declares and does not keep.
const brokenConnectTimeout = 300 * time.Millisecond

// connectTimeoutProfile is PlainProfile with a connect timeout of
// brokenConnectTimeout declared.
func connectTimeoutProfile() harness.Profile {
	p := PlainProfile()
	p.Default.ConnectTimeout = brokenConnectTimeout
	return p
}

// newConnectTimeoutUnset is PlainTransport with neither a dial nor a TLS
// handshake timeout, as a zero http.Transport and net.Dialer have: a
// connection that never completes holds its call until the request
// timeout ends it.
func newConnectTimeoutUnset(svc harness.Service) (harness.Client, error) {
	return plainClient(svc, func(t *http.Transport) {
		t.DialContext = (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 0
	})
}
