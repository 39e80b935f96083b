package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// ErrCallerGaveUp is the cause of the context of a call its caller
// cancelled (see CallerLimits).
var ErrCallerGaveUp = errors.New("poolproof: the caller gave up on the call")

// CallerLimits makes the workload's callers give up on a seeded share of
// calls, as real callers do: a share carries a context deadline, another
// share is cancelled while in flight. Which calls, and when, depends only
// on the seed and the call number (History.CallerLimit), so a replay gives
// up on the same calls. The zero value gives up on none: every call's
// context is then never cancelled and has no deadline.
type CallerLimits struct {
	// DeadlineShare of the calls carry a context deadline Deadline after
	// their start.
	DeadlineShare float64       `json:"deadline_share,omitempty"`
	Deadline      time.Duration `json:"deadline,omitempty"`
	// CancelShare of the calls have their context cancelled CancelAfter
	// after their start (with cause ErrCallerGaveUp).
	CancelShare float64       `json:"cancel_share,omitempty"`
	CancelAfter time.Duration `json:"cancel_after,omitempty"`
}

func (l CallerLimits) active() bool { return l.DeadlineShare > 0 || l.CancelShare > 0 }

func (l CallerLimits) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrInvalidWorkload, &FieldError{Path: "caller." + field, Problem: fmt.Sprintf(format, args...)})
	}
	switch {
	case l.DeadlineShare < 0 || l.CancelShare < 0 || l.DeadlineShare+l.CancelShare > 1:
		return bad("deadline_share", "%v and cancel_share %v: each >= 0, together <= 1", l.DeadlineShare, l.CancelShare)
	case l.DeadlineShare > 0 && l.Deadline <= 0:
		return bad("deadline", "%v: a share of calls with a deadline needs the deadline, e.g. 150ms", l.Deadline)
	case l.CancelShare > 0 && l.CancelAfter <= 0:
		return bad("cancel_after", "%v: a share of cancelled calls needs when to cancel them, e.g. 100ms", l.CancelAfter)
	}
	return nil
}

// CallerLimitKind is how the caller gives up on one call.
type CallerLimitKind uint8

// Ways a caller gives up.
const (
	CallerWaits    CallerLimitKind = iota // the caller waits for the client, however long
	CallerDeadline                        // the call's context has a deadline
	CallerCancel                          // the call's context is cancelled while in flight
)

func (k CallerLimitKind) String() string {
	switch k {
	case CallerWaits:
		return "waits"
	case CallerDeadline:
		return "deadline"
	case CallerCancel:
		return "cancel"
	}
	return "caller(" + strconv.Itoa(int(k)) + ")"
}

// CallerLimit is how and when the caller gives up on one call: After its
// start, by Kind.
type CallerLimit struct {
	Kind  CallerLimitKind
	After time.Duration
}

// callerStream keeps the caller's draws apart from the plan's (which op,
// which item), so that giving up on calls does not change which calls are made.
const callerStream = 0x6361_6c6c_6572 // "caller"

// callerLimit is how the caller gives up on call seq of a run with seed.
func (l CallerLimits) callerLimit(seed int64, seq uint32) CallerLimit {
	if !l.active() {
		return CallerLimit{}
	}
	u := rand.New(rand.NewPCG(uint64(seed)^callerStream, uint64(seq))).Float64()
	switch {
	case u < l.DeadlineShare:
		return CallerLimit{CallerDeadline, l.Deadline}
	case u < l.DeadlineShare+l.CancelShare:
		return CallerLimit{CallerCancel, l.CancelAfter}
	}
	return CallerLimit{}
}

// CallerLimit is how the caller gave up on call seq, from the workload and
// the seed (CallerWaits when it waited).
func (h *History) CallerLimit(seq uint32) CallerLimit {
	return h.Workload.Caller.callerLimit(h.Seed, seq)
}

// CallerGaveUp reports whether the caller gave up on c: a call with a
// deadline or cancelled by its caller, or a call of a run that was
// interrupted. Such a call's failure is not the client's.
func (h *History) CallerGaveUp(c CallRecord) bool {
	return c.Class == ClassCanceled || h.CallerLimit(c.Seq).Kind != CallerWaits
}

// context gives parent the limit. The deadline or cancellation is released
// when it fires, never when the call ends: cancelling a call's context as
// it completes would let net/http close the connection of a response body
// the client leaked, hiding the leak (see Run).
func (l CallerLimit) context(parent context.Context) context.Context {
	switch l.Kind {
	case CallerDeadline:
		ctx, cancel := context.WithTimeout(parent, l.After)
		context.AfterFunc(ctx, cancel) // after the deadline fired: the call sees DeadlineExceeded
		return ctx
	case CallerCancel:
		ctx, cancel := context.WithCancelCause(parent)
		time.AfterFunc(l.After, func() { cancel(ErrCallerGaveUp) })
		return ctx
	}
	return parent
}
