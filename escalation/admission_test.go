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
// more than admitLate late narrows it to one create at a time while it runs and for admitHold after;
// a create waits for its turn, gives up with its context, and is refused after the gate's wait.
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

	// Open: any number at once, none of them holding a slot.
	open := func(when string) {
		t.Helper()
		for range admitSlots + 2 {
			if _, err := e.Admit(ctx); err != nil {
				t.Fatalf("%s: %v, want admitted at once", when, err)
			}
		}
	}
	// Narrow: one turn at a time; the next waits, and its own context ends that wait.
	narrow := func(when string) func() {
		t.Helper()
		done, err := e.Admit(ctx)
		if err != nil {
			t.Fatalf("%s: the first create: %v", when, err)
		}
		short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := e.Admit(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: a second create while the first holds the turn: %v, want its context's deadline", when, err)
		}
		return done
	}
	open("at start")
	e.observe(SendArgs{}.Kind(), time.Now().Add(-time.Hour))
	open("after a late send")
	e.stepStarted(time.Now())()
	open("after a step on time")

	end := e.stepStarted(time.Now().Add(-time.Second))
	done := narrow("while a late step runs")
	_, err := e.Admit(ctx)
	if p, ok := problem.As(err); !ok || p.Code != "escalation_behind" || p.Kind != problem.Unavailable || p.RetryAfter <= 0 {
		t.Fatalf("a create past the gate's wait: %v, want 503 escalation_behind with Retry-After", err)
	}
	got := make(chan error, 1)
	go func() {
		next, err := e.Admit(ctx)
		if err == nil {
			next()
		}
		got <- err
	}()
	done()
	if err := <-got; err != nil {
		t.Fatalf("a create waiting when the turn was freed: %v", err)
	}
	advance(10 * admitHold)
	narrow("a late step still running long after it started")()

	end()
	advance(admitHold - time.Millisecond)
	narrow("just under admitHold after the late step ended")()
	advance(time.Millisecond)
	open("admitHold after the late step ended")
}

// The log says the gate narrowed when it was open, at most once per admitLogEvery.
func TestAdmissionLogsSparingly(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	a := newAdmission(func() time.Time { return now })
	var running []func()
	steps := []struct {
		afterEnd time.Duration // if set, the late steps under way end, and this much time passes
		advance  time.Duration
		late     time.Duration
		log      bool
	}{
		{late: admitLate}, // on the line: not late
		{late: admitLate + time.Millisecond, log: true},         // narrows: the first line
		{advance: time.Millisecond, late: time.Second},          // already narrow
		{advance: 2 * admitHold, late: time.Second},             // one still runs: still narrow
		{afterEnd: 2 * admitHold, late: time.Second},            // narrows again within the minute
		{afterEnd: admitLogEvery, late: time.Second, log: true}, // narrows again a minute on
		{advance: admitHold / 2, late: 5 * time.Second},         // already narrow
	}
	for i, s := range steps {
		if s.afterEnd > 0 {
			for _, end := range running {
				end()
			}
			running = nil
			now = now.Add(s.afterEnd)
		}
		now = now.Add(s.advance)
		end, log := a.started(s.late)
		running = append(running, end)
		if log != s.log {
			t.Errorf("step %d (late %v): log %v, want %v", i, s.late, log, s.log)
		}
	}
}
