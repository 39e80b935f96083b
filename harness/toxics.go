package harness

import (
	"fmt"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// Toxic constructors. Each returns a Toxic with toxicity 1 (every
// connection) unless WithToxicity says otherwise; an empty name becomes
// "<type>_<stream>", Toxiproxy's own default, so the toxic can be removed by
// that name. Durations are sent in Toxiproxy's units (milliseconds, or
// microseconds for the slicer delay), truncated.
//
// A Toxic written by hand as data keeps its Toxicity literally: 0 means the
// toxic is installed but never fires.

// ToxicOption adjusts a Toxic built by a constructor.
type ToxicOption func(*Toxic)

// WithToxicity sets the probability (0..1), drawn by Toxiproxy once per
// connection and direction, that the toxic applies to a connection.
func WithToxicity(p float32) ToxicOption { return func(t *Toxic) { t.Toxicity = p } }

// Latency delays all data by latency ± jitter.
func Latency(name, stream string, latency, jitter time.Duration, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicLatency, stream, map[string]any{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()}, opts)
}

// Bandwidth limits the stream to rateKBps kilobytes per second.
func Bandwidth(name, stream string, rateKBps int64, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicBandwidth, stream, map[string]any{"rate": rateKBps}, opts)
}

// SlowClose delays the close of the connection by delay once the peer closed.
func SlowClose(name, stream string, delay time.Duration, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicSlowClose, stream, map[string]any{"delay": delay.Milliseconds()}, opts)
}

// Timeout stops all data and closes the connection after d; with d = 0 the
// data is held forever and the connection is never closed: a blackhole.
func Timeout(name, stream string, d time.Duration, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicTimeout, stream, map[string]any{"timeout": d.Milliseconds()}, opts)
}

// ResetPeer resets the connection (TCP RST) timeout after the first data
// arrives; 0 resets on the first data. It applies to connections made after
// it is added (Toxiproxy sets SO_LINGER=0 when a link starts).
func ResetPeer(name, stream string, timeout time.Duration, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicResetPeer, stream, map[string]any{"timeout": timeout.Milliseconds()}, opts)
}

// Slicer cuts the data into packets of avgSize ± sizeVariation bytes sent
// delay apart; the bytes are unchanged.
func Slicer(name, stream string, avgSize, sizeVariation int, delay time.Duration, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicSlicer, stream, map[string]any{
		"average_size": int64(avgSize), "size_variation": int64(sizeVariation), "delay": delay.Microseconds(),
	}, opts)
}

// LimitData closes the connection once bytes bytes went through.
func LimitData(name, stream string, bytes int64, opts ...ToxicOption) Toxic {
	return newToxic(name, ToxicLimitData, stream, map[string]any{"bytes": bytes}, opts)
}

func newToxic(name, typ, stream string, attrs map[string]any, opts []ToxicOption) Toxic {
	t := Toxic{Name: name, Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs}
	if t.Name == "" {
		t.Name = typ + "_" + stream
	}
	for _, o := range opts {
		o(&t)
	}
	return t
}

// Normalize checks a toxic before it goes to Toxiproxy and fills the name
// Toxiproxy would pick, so errors name the field at fault.
func (t Toxic) Normalize() (Toxic, error) {
	if t.Type == "" {
		return t, fmt.Errorf("%w: Toxic.Type is empty: want e.g. %q or %q", ErrInvalidAction, ToxicLatency, ToxicTimeout)
	}
	if t.Stream != Upstream && t.Stream != Downstream {
		return t, fmt.Errorf("%w: Toxic.Stream %q of toxic %q: want %q or %q", ErrInvalidAction, t.Stream, t.Name, Upstream, Downstream)
	}
	if t.Toxicity < 0 || t.Toxicity > 1 {
		return t, fmt.Errorf("%w: Toxic.Toxicity %v of toxic %q: want 0..1", ErrInvalidAction, t.Toxicity, t.Name)
	}
	if t.Name == "" {
		t.Name = t.Type + "_" + t.Stream
	}
	if t.Attributes == nil {
		t.Attributes = map[string]any{}
	}
	return t, nil
}

// Action helpers, so that a schedule reads as data.

// AddToxic adds t to the service's proxy.
func AddToxic(service string, t Toxic) Action {
	return Action{Kind: ActionAddToxic, Service: service, Toxic: &t}
}

// RemoveToxic removes the named toxic from the service's proxy.
func RemoveToxic(service, toxicName string) Action {
	return Action{Kind: ActionRemoveToxic, Service: service, ToxicName: toxicName}
}

// DisableProxy drops every live connection to the service and refuses new ones.
func DisableProxy(service string) Action {
	return Action{Kind: ActionDisableProxy, Service: service}
}

// EnableProxy accepts connections to the service again.
func EnableProxy(service string) Action {
	return Action{Kind: ActionEnableProxy, Service: service}
}

// SetHTTPFaults replaces the service's HTTP faults with faults.
func SetHTTPFaults(service string, faults ...fakeservers.Fault) Action {
	return Action{Kind: ActionSetHTTPFaults, Service: service, HTTPFaults: faults}
}

// ClearHTTPFaults removes every HTTP fault of the service.
func ClearHTTPFaults(service string) Action {
	return Action{Kind: ActionClearHTTPFaults, Service: service}
}

// SetProtocol makes the service offer protocol (ProtocolHTTP1 or
// ProtocolHTTP2) to new connections.
func SetProtocol(service, protocol string) Action {
	return Action{Kind: ActionSetProtocol, Service: service, Protocol: protocol}
}

// SetKeepAlive changes the service's connection policy.
func SetKeepAlive(service string, ka fakeservers.KeepAlive) Action {
	return Action{Kind: ActionSetKeepAlive, Service: service, KeepAlive: &ka}
}
