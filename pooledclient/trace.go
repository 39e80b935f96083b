package pooledclient

import (
	"context"
	"net/http/httptrace"
	"reflect"
)

// The transport finds a request's ClientTrace with ctx.Value under
// httptrace's unexported key. httptrace.WithClientTrace stores it with
// context.WithValue: one more allocation per attempt, and one more context
// for every lookup to walk, which costs the client about 1.5% of its
// throughput on loopback. An attempt's context (attemptCtx) answers that key
// itself, from the call it belongs to, so the trace costs nothing.
//
// traceKey is that key, learnt once by watching which key
// ContextClientTrace asks for, and kept only if ContextClientTrace then
// finds a trace through it. Where it is not learnt (another net/http), and
// where the caller's context carries a trace of its own (to be composed
// with the client's), attempts use WithClientTrace as usual.
var traceKey = learnTraceKey()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(k any) any {
	if p.key == nil {
		p.key = k
	}
	return nil
}

type keyAnswer struct {
	context.Context
	key   any
	trace *httptrace.ClientTrace
}

func (a keyAnswer) Value(k any) any {
	if k == a.key {
		return a.trace
	}
	return nil
}

func learnTraceKey() any {
	p := &keyProbe{Context: context.Background()}
	_ = httptrace.ContextClientTrace(p)
	if p.key == nil || !reflect.TypeOf(p.key).Comparable() {
		return nil
	}
	want := &httptrace.ClientTrace{}
	if httptrace.ContextClientTrace(keyAnswer{Context: context.Background(), key: p.key, trace: want}) != want {
		return nil
	}
	return p.key
}

// traceContext returns the context of c's attempt, carrying c's trace.
func (c *call) traceContext(parent context.Context) context.Context {
	if traceKey != nil && httptrace.ContextClientTrace(parent) == nil {
		c.ownsTrace = true
		return &c.ctx
	}
	return httptrace.WithClientTrace(&c.ctx, &c.trace)
}
