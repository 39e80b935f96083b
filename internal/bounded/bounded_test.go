package bounded_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/poolproof/poolproof/internal/bounded"
)

func TestCall(t *testing.T) {
	errFn := errors.New("fn failed")
	// never blocks until the test ends; every abandoned fn waits on it.
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })

	for _, tc := range []struct {
		name          string
		ctx           func(t *testing.T) context.Context
		timeout       time.Duration
		grace         time.Duration
		fn            func(context.Context) error
		wantErr       error // errors.Is
		wantText      string
		wantAbandoned bool
		minTook       time.Duration
	}{
		{
			name:    "returns fn's nil",
			timeout: time.Second,
			fn:      func(context.Context) error { return nil },
		},
		{
			name:     "returns fn's error",
			timeout:  time.Second,
			fn:       func(context.Context) error { return errFn },
			wantErr:  errFn,
			wantText: "fn failed",
		},
		{
			name:     "recovers a panic",
			timeout:  time.Second,
			fn:       func(context.Context) error { panic("boom") },
			wantErr:  bounded.ErrPanicked,
			wantText: "panicked: boom",
		},
		{
			name:          "gives up at the timeout",
			timeout:       50 * time.Millisecond,
			fn:            func(context.Context) error { <-never; return nil },
			wantErr:       context.DeadlineExceeded,
			wantAbandoned: true,
			minTook:       50 * time.Millisecond,
		},
		{
			name: "gives up when ctx is canceled",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			timeout:       time.Minute,
			fn:            func(context.Context) error { <-never; return nil },
			wantErr:       context.Canceled,
			wantAbandoned: true,
			minTook:       50 * time.Millisecond,
		},
		{
			name: "gives up at ctx's deadline",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			timeout:       time.Minute,
			fn:            func(context.Context) error { <-never; return nil },
			wantErr:       context.DeadlineExceeded,
			wantAbandoned: true,
			minTook:       50 * time.Millisecond,
		},
		{
			name:    "waits grace for an fn that returns when its context ends",
			timeout: 50 * time.Millisecond,
			grace:   time.Minute,
			fn: func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(20 * time.Millisecond)
				return errFn
			},
			wantErr:  errFn,
			wantText: "fn failed",
			minTook:  70 * time.Millisecond,
		},
		{
			name:          "gives up after grace",
			timeout:       50 * time.Millisecond,
			grace:         50 * time.Millisecond,
			fn:            func(context.Context) error { <-never; return nil },
			wantErr:       context.DeadlineExceeded,
			wantAbandoned: true,
			minTook:       100 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The clock starts before the context's own timer does, so
			// minTook compares like with like.
			start := time.Now()
			ctx := context.Background()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			err, abandoned := bounded.Call(ctx, tc.timeout, tc.grace, tc.fn)
			took := time.Since(start)
			assert.Equal(t, tc.wantAbandoned, abandoned)
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			if tc.wantText != "" {
				assert.EqualError(t, err, tc.wantText)
			}
			assert.GreaterOrEqual(t, took, tc.minTook)
			assert.Less(t, took, 5*time.Second, "a wait must end long before the minute-long bounds")
		})
	}
}

func TestCallEndsFnContextWhenItGivesUp(t *testing.T) {
	ended := make(chan error, 1)
	_, abandoned := bounded.Call(context.Background(), 20*time.Millisecond, 0, func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // past the wait: the call is abandoned
		ended <- ctx.Err()
		return nil
	})
	require.True(t, abandoned)
	select {
	case err := <-ended:
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(5 * time.Second):
		t.Fatal("fn's context did not end")
	}
}

func TestAbandonedCallDoesNotBlockForever(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	for _, fn := range []func(context.Context) error{
		func(context.Context) error { <-release; return errors.New("late") },
		func(context.Context) error { <-release; panic("late") },
	} {
		_, abandoned := bounded.Call(context.Background(), 10*time.Millisecond, 0, fn)
		require.True(t, abandoned)
	}
	// Nobody reads the results: the goroutines exit only if their sends do
	// not block, which the deferred leak check verifies.
	close(release)
}
