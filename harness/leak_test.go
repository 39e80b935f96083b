package harness

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/fakeservers"
)

type parker struct{ park chan struct{} }

// start starts n goroutines and returns once each of them runs wait.
func (p *parker) start(n int) {
	var running sync.WaitGroup
	running.Add(n)
	for range n {
		go p.wait(&running)
	}
	running.Wait()
}

func (p *parker) wait(running *sync.WaitGroup) {
	running.Done()
	<-p.park
}

func TestParseGoleakNamesTheLeakedGoroutines(t *testing.T) {
	base := goleak.IgnoreCurrent()
	p := &parker{park: make(chan struct{})}
	t.Cleanup(func() { close(p.park) })
	p.start(3)

	err := goleak.Find(base)
	require.Error(t, err)
	n, gs := parseGoleak(err.Error())
	assert.Equal(t, 3, n)
	require.Len(t, gs, 3)
	for _, g := range gs {
		assert.Equal(t, "github.com/poolproof/poolproof/harness.(*parker).wait", g.Entry)
		assert.Equal(t, "github.com/poolproof/poolproof/harness.(*parker).wait", g.Top)
		assert.Contains(t, g.State, "chan receive")
	}
}

func TestEntryFunction(t *testing.T) {
	stack := "goroutine 7 [select]:\n" +
		"time.Sleep(0x3b9aca00)\n\t/usr/local/go/src/runtime/time.go:300 +0x11\n" +
		"main.(*leaky).poll(0xc000010000, {0x1, 0x2})\n\t/src/main.go:12 +0x25\n" +
		"created by main.(*leaky).Do in goroutine 1\n\t/src/main.go:20 +0x6a\n"
	assert.Equal(t, "main.(*leaky).poll", entryFunction(stack))
	assert.Equal(t, "main.f", stripArgs("main.f(...)"))
	assert.Equal(t, "main.(*T).m.func1", stripArgs("main.(*T).m.func1()"))
}

func TestSortIdleCloseTellsThePoolFromWhatIsHeld(t *testing.T) {
	now := time.Now()
	conn := func(requests int, route string, inFlight int, age time.Duration) fakeservers.ConnRecord {
		return fakeservers.ConnRecord{Requests: requests, LastRoute: route, InFlight: inFlight, Accepted: now.Add(-age)}
	}
	res := fakeservers.IdleClose{
		Now: now,
		Closed: []fakeservers.ConnRecord{
			conn(1, "GET /v1/items/{sku}", 0, time.Second),
			conn(9, "GET /v1/items/{sku}", 0, 3*time.Second),
			conn(1, "GET /v1/items/{sku}", 0, 2*time.Second),
			conn(7, "POST /v1/charges", 0, 3*time.Second),
		},
		Busy: []fakeservers.ConnRecord{conn(2, "GET /v1/catalog", 1, 500*time.Millisecond)},
	}

	t.Run("a client that cannot close its idle connections keeps a pool up to its declared size", func(t *testing.T) {
		idle, held, open := sortIdleClose(res, false, 2)
		assert.Equal(t, 2, idle, "the two connections that carried the most requests are the pool")
		assert.Equal(t, 3, open)
		assert.Equal(t, []HeldConns{
			{Reason: HeldBeyondPool, LastRoute: "GET /v1/items/{sku}", Count: 2, Requests: 2, Oldest: 2 * time.Second, Newest: time.Second},
			{Reason: HeldInFlight, LastRoute: "GET /v1/catalog", Count: 1, Requests: 2, Oldest: 500 * time.Millisecond, Newest: 500 * time.Millisecond},
		}, held)
	})
	t.Run("a client that closed its idle connections has no pool left", func(t *testing.T) {
		idle, held, open := sortIdleClose(res, true, 16)
		assert.Zero(t, idle)
		assert.Equal(t, 5, open)
		require.Len(t, held, 3)
		assert.Equal(t, HeldNotReturned, held[0].Reason)
		assert.Equal(t, 3, held[0].Count)
		assert.Equal(t, HeldNotReturned, held[1].Reason)
		assert.Equal(t, "POST /v1/charges", held[1].LastRoute)
		assert.Equal(t, HeldInFlight, held[2].Reason)
	})
}

// scriptedCloser answers CloseIdleConns from a script, one answer a call,
// repeating the last one.
type scriptedCloser struct {
	answers []fakeservers.IdleClose
	calls   int
}

func (s *scriptedCloser) CloseIdleConns(context.Context, string) (fakeservers.IdleClose, error) {
	a := s.answers[min(s.calls, len(s.answers)-1)]
	s.calls++
	return a, nil
}

func TestCloseIdleSettledWaitsOutHandlersOfAbandonedCalls(t *testing.T) {
	now := time.Now()
	pooled := fakeservers.ConnRecord{ID: 1, Requests: 5, Accepted: now}
	abandoned := fakeservers.ConnRecord{ID: 2, Requests: 1, InFlight: 1, Accepted: now}

	t.Run("a handler that ends takes its connection with it", func(t *testing.T) {
		c := &scriptedCloser{answers: []fakeservers.IdleClose{
			{Now: now, Closed: []fakeservers.ConnRecord{pooled}, Busy: []fakeservers.ConnRecord{abandoned}},
			{Now: now, Busy: []fakeservers.ConnRecord{abandoned}},
			{Now: now}, // the handler ended; the client had closed its side
		}}
		res, err := closeIdleSettled(context.Background(), c, "inventory", time.Second, 5*time.Second)
		require.NoError(t, err)
		assert.Equal(t, 3, c.calls)
		assert.Equal(t, []fakeservers.ConnRecord{pooled}, res.Closed, "what the first close closed is kept")
		assert.Empty(t, res.Busy)
		idle, held, open := sortIdleClose(res, false, 2)
		assert.Equal(t, 1, idle)
		assert.Empty(t, held)
		assert.Zero(t, open)
	})
	t.Run("a connection that stays busy is held in flight", func(t *testing.T) {
		c := &scriptedCloser{answers: []fakeservers.IdleClose{{Now: now, Busy: []fakeservers.ConnRecord{abandoned}}}}
		res, err := closeIdleSettled(context.Background(), c, "inventory", time.Second, 200*time.Millisecond)
		require.NoError(t, err)
		assert.Greater(t, c.calls, 1, "it asked again before giving up")
		_, held, open := sortIdleClose(res, false, 2)
		assert.Equal(t, 1, open)
		require.Len(t, held, 1)
		assert.Equal(t, HeldInFlight, held[0].Reason)
	})
}
