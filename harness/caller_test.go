package harness

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallerLimitsAreSeededAndValidated(t *testing.T) {
	l := CallerLimits{DeadlineShare: 0.3, Deadline: 150 * time.Millisecond, CancelShare: 0.2, CancelAfter: 100 * time.Millisecond}
	h := &History{Seed: 42, Workload: Workload{Caller: l}}
	counts := map[CallerLimitKind]int{}
	for seq := range uint32(2000) {
		got := h.CallerLimit(seq)
		assert.Equal(t, got, l.callerLimit(42, seq), "the history replays the runner's draw")
		counts[got.Kind]++
		switch got.Kind {
		case CallerDeadline:
			assert.Equal(t, l.Deadline, got.After)
		case CallerCancel:
			assert.Equal(t, l.CancelAfter, got.After)
		}
	}
	assert.InDelta(t, 600, counts[CallerDeadline], 90)
	assert.InDelta(t, 400, counts[CallerCancel], 80)
	other := &History{Seed: 43, Workload: Workload{Caller: l}}
	differ := 0
	for seq := range uint32(200) {
		if other.CallerLimit(seq) != h.CallerLimit(seq) {
			differ++
		}
	}
	assert.Positive(t, differ, "another seed gives up on other calls")
	assert.Equal(t, CallerLimit{}, CallerLimits{}.callerLimit(42, 7), "the zero value gives up on none")

	for _, bad := range []CallerLimits{
		{DeadlineShare: -0.1, Deadline: time.Second},
		{DeadlineShare: 0.7, Deadline: time.Second, CancelShare: 0.7, CancelAfter: time.Second},
		{DeadlineShare: 0.2},
		{CancelShare: 0.2},
	} {
		assert.ErrorIs(t, bad.validate(), ErrInvalidWorkload, "%+v", bad)
	}
	require.NoError(t, l.validate())
}

func TestCallerLimitContexts(t *testing.T) {
	parent := context.Background()
	assert.Equal(t, parent, CallerLimit{}.context(parent), "a caller that waits adds nothing")

	ctx := CallerLimit{CallerDeadline, 20 * time.Millisecond}.context(parent)
	dl, ok := ctx.Deadline()
	require.True(t, ok, "the client can see the caller's deadline")
	assert.WithinDuration(t, time.Now().Add(20*time.Millisecond), dl, time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the deadline never fired")
	}
	assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)

	ctx = CallerLimit{CallerCancel, 20 * time.Millisecond}.context(parent)
	_, ok = ctx.Deadline()
	assert.False(t, ok, "a cancellation comes without warning")
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the cancellation never came")
	}
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	assert.True(t, errors.Is(context.Cause(ctx), ErrCallerGaveUp))
}
