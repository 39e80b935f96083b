package brokenclients

import (
	"cmp"
	"net/http"
	"time"

	"github.com/poolproof/poolproof/harness"
)

// The pool parameters the pool-parameter gallery clients declare and do
// not keep, short enough for pool-idle-lifetime to judge.
const (
	brokenIdleTimeout = 300 * time.Millisecond
	brokenMaxLifetime = 500 * time.Millisecond
)

// poolParamsProfile is PlainProfile with the pool parameters of extra
// declared as well.
func poolParamsProfile(extra harness.Contract) harness.Profile {
	p := PlainProfile()
	p.Default.IdleTimeout = cmp.Or(extra.IdleTimeout, p.Default.IdleTimeout)
	p.Default.MaxConnLifetime = extra.MaxConnLifetime
	return p
}

// newIdleConnsKept is PlainTransport with its idle timeout dropped: the
// contract says 300ms, the transport never closes an idle connection.
func newIdleConnsKept(svc harness.Service) (harness.Client, error) {
	return plainClient(svc, func(t *http.Transport) { t.IdleConnTimeout = 0 })
}

// newConnsLiveForever is PlainTransport unchanged: net/http has no
// connection lifetime, so a contract that declares one is not kept.
func newConnsLiveForever(svc harness.Service) (harness.Client, error) {
	return plainClient(svc, nil)
}
