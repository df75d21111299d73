package escalation

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/problem"
)

// The gate stays open while step jobs start on time (sends are not the queue's measure). A step job
// more than admitLate late narrows it to one create at a time until admitHold has passed without
// another; a create waits for its turn, gives up with its context, and is refused after the wait.
func TestAdmissionGate(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := newAdmission(clock)
	a.wait = 50 * time.Millisecond
	e := &Engine{d: Deps{Logger: slog.New(slog.DiscardHandler)}, admit: a}
	ctx := context.Background()

	admit := func(ctx context.Context) (func(), error) { return e.Admit(ctx) }
	// Open: any number at once, none of them holding a slot.
	open := func(when string) {
		t.Helper()
		for range admitSlots + 2 {
			if _, err := admit(ctx); err != nil {
				t.Fatalf("%s: %v, want admitted at once", when, err)
			}
		}
	}
	open("at start")
	e.observe(SendArgs{}.Kind(), time.Now().Add(-time.Hour))
	open("after a late send")
	e.observe(StepArgs{}.Kind(), time.Now())
	open("after a step on time")

	e.observe(StepArgs{}.Kind(), time.Now().Add(-time.Second))
	done, err := admit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The slot is taken: the next waits for it, and its own context can end that wait.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := admit(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second create while the first holds the slot: %v, want its context's deadline", err)
	}
	_, err = admit(ctx)
	if p, ok := problem.As(err); !ok || p.Code != "escalation_behind" || p.Kind != problem.Unavailable || p.RetryAfter <= 0 {
		t.Fatalf("second create past the gate's wait: %v, want 503 escalation_behind with Retry-After", err)
	}
	got := make(chan error, 1)
	go func() {
		next, err := admit(ctx)
		if err == nil {
			next()
		}
		got <- err
	}()
	done()
	if err := <-got; err != nil {
		t.Fatalf("a create waiting when the slot was freed: %v", err)
	}

	// A late claim within the hold renews it; the gate opens admitHold after the last one.
	advance(admitHold - time.Millisecond)
	e.observe(StepArgs{}.Kind(), time.Now().Add(-time.Second))
	advance(admitHold - time.Millisecond)
	done, err = admit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admit(short); err == nil {
		t.Fatal("the gate opened before admitHold passed after the last late step")
	}
	done()
	advance(time.Millisecond)
	open("admitHold after the last late step")
}

// The log says the gate narrowed when it was open, at most once per admitLogEvery.
func TestAdmissionLogsSparingly(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a := newAdmission(func() time.Time { return now })
	steps := []struct {
		advance time.Duration
		late    time.Duration
		log     bool
	}{
		{0, admitLate, false},                   // on the line: not late
		{0, admitLate + time.Millisecond, true}, // narrows, first line
		{time.Millisecond, time.Second, false},  // already narrow
		{2 * admitHold, time.Second, false},     // narrows again within the minute
		{admitLogEvery, time.Second, true},      // narrows again a minute on
		{admitHold / 2, 5 * time.Second, false}, // still narrow
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := a.late(s.late); got != s.log {
			t.Errorf("step %d (late %v): log %v, want %v", i, s.late, got, s.log)
		}
	}
}
