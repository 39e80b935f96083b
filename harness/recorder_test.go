package harness

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type classed struct{ class string }

func (c classed) Error() string          { return "client says " + c.class }
func (c classed) PoolproofClass() string { return c.class }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	urlErr := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://127.0.0.1:1/v1/items/sku-1", Err: err}
	}
	opErr := func(err error) error {
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", err)}
	}
	tests := []struct {
		name string
		err  error
		want ErrorClass
	}{
		{"nil", nil, ClassNone},
		{"classifier wins", fmt.Errorf("wrapped: %w", classed{"pool_exhausted"}), ClassPoolExhausted},
		{"classifier unknown name", classed{"weird"}, ClassOther},
		{"pool exhausted text", errors.New("pooledclient: pool exhausted after 250ms"), ClassPoolExhausted},
		{"circuit open text", errors.New("payment: circuit open"), ClassCircuitOpen},
		{"gobreaker open", errors.New("circuit breaker is open"), ClassCircuitOpen},
		{"canceled", urlErr(context.Canceled), ClassCanceled},
		{"deadline", urlErr(context.DeadlineExceeded), ClassTimeout},
		{"os deadline", opErr(os.ErrDeadlineExceeded), ClassTimeout},
		{"net timeout", urlErr(timeoutErr{}), ClassTimeout},
		{"refused", urlErr(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), ClassConnRefused},
		{"reset", urlErr(opErr(syscall.ECONNRESET)), ClassReset},
		{"broken pipe", urlErr(opErr(syscall.EPIPE)), ClassReset},
		{"reset by text (wrapped with %v)", fmt.Errorf("retry failed: %v", opErr(syscall.ECONNRESET)), ClassReset},
		{"unknown authority", urlErr(x509.UnknownAuthorityError{}), ClassTLS},
		{"tls text", errors.New("remote error: tls: handshake failure"), ClassTLS},
		{"eof", urlErr(io.EOF), ClassEOF},
		{"unexpected eof", fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), ClassEOF},
		{"server closed idle", errors.New("http: server closed idle connection"), ClassEOF},
		{"other", errors.New("something odd"), ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Classify(tt.err))
		})
	}
}

func TestCallRecordIsCompact(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(CallRecord{}), uintptr(32))
}

func TestRecorderConcurrentAppendsAndOrder(t *testing.T) {
	r := NewRecorder()
	const workers, each = 8, 3000 // crosses several chunks
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				seq := uint32(w*each + i)
				c := CallRecord{Seq: seq, Start: int64(seq % 977), End: int64(seq%977) + 5, Op: OpGetItem, Service: ServiceInventory}
				text := ""
				if i%10 == 0 {
					c.Class = ClassReset
					text = "connection reset by peer"
				}
				r.Record(c, text)
			}
		}()
	}
	wg.Wait()
	calls, texts := r.Calls()
	require.Len(t, calls, workers*each)
	assert.Equal(t, workers*each, cap(calls), "the final slice is exactly sized")
	assert.Equal(t, []string{"connection reset by peer"}, texts)
	seen := make(map[uint32]bool, len(calls))
	for i, c := range calls {
		require.False(t, seen[c.Seq], "seq %d twice", c.Seq)
		seen[c.Seq] = true
		if i > 0 {
			require.True(t, calls[i-1].Start < c.Start || calls[i-1].Start == c.Start && calls[i-1].Seq < c.Seq)
		}
	}
	total, failed, hung := r.Counts()
	assert.Equal(t, int64(workers*each), total)
	assert.Equal(t, int64(workers*each/10), failed)
	assert.Zero(t, hung)
}

func TestRecorderCapsDistinctErrorTexts(t *testing.T) {
	r := NewRecorder()
	for i := range maxErrorTexts + 10 {
		r.Record(CallRecord{Seq: uint32(i), Class: ClassReset}, fmt.Sprintf("read tcp 127.0.0.1:%d: reset", 40000+i))
	}
	calls, texts := r.Calls()
	assert.Len(t, texts, maxErrorTexts)
	h := &History{Calls: calls, ErrorTexts: texts}
	assert.Equal(t, "read tcp 127.0.0.1:40000: reset", h.ErrorText(calls[0]))
	assert.Contains(t, h.ErrorText(calls[len(calls)-1]), "not kept")
}
