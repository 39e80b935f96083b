// Package bounded waits a bounded time for a call that may not return: a
// fault driver or a client under test that ignores its context, a library
// that takes none. Call runs the function in a goroutine of its own, turns
// a panic into an error, and stops waiting at a timeout or when the
// caller's context ends; the call it gave up on finishes in the background
// without blocking, and the caller says what that means (hung, no answer).
package bounded

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrPanicked is what the error of a call that panicked wraps; it reads
// "panicked: " and the panic's value.
var ErrPanicked = errors.New("panicked")

// Call runs fn in its own goroutine with a context that ends after timeout
// or with ctx, and waits for it that long and grace longer (for an fn that
// returns soon after its context ends). It returns fn's error, or
// abandoned and the context's error (context.DeadlineExceeded at the
// timeout, ctx's error when ctx ended) when it stopped waiting first. The
// abandoned fn is left to return in the background: nothing waits on it.
func Call(ctx context.Context, timeout, grace time.Duration, fn func(context.Context) error) (err error, abandoned bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1) // buffered: an abandoned fn sends and exits
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("%w: %v", ErrPanicked, p)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err, false
	case <-ctx.Done():
	}
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case err := <-done:
			return err, false
		case <-t.C:
		}
	}
	return ctx.Err(), true
}
