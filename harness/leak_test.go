package harness

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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
