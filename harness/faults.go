package harness

import (
	"context"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/poolproof/poolproof/fakeservers"
)

// FaultDriver applies nemesis actions through Toxiproxy's own client library
// and the fake services' admin API, never by reaching into objects, so the
// same scenario runs against in-process, containerised and remote servers.
type FaultDriver struct {
	toxiproxy   *toxiclient.Client
	admins      map[string]*fakeservers.AdminClient // by service; missing for services that are not fake services
	callTimeout time.Duration
}

// NewFaultDriver returns a driver for the Toxiproxy API at toxiproxyURL, whose
// proxies are named after the services, and the fake services' admin clients.
// Every call is bounded by callTimeout as well as by its context.
func NewFaultDriver(toxiproxyURL string, admins map[string]*fakeservers.AdminClient, callTimeout time.Duration) *FaultDriver {
	return &FaultDriver{toxiproxy: toxiclient.NewClient(toxiproxyURL), admins: admins, callTimeout: callTimeout}
}

// Apply performs one action.
func (d *FaultDriver) Apply(ctx context.Context, a Action) error {
	panic("not implemented yet")
}
