package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout is generous because Redis suites run in parallel under -race.
const waitTimeout = 5 * time.Second

func waitEvent(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed, want a wake-up", what)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s: no wake-up within %v", what, waitTimeout)
	}
}

func assertNoEvent(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		t.Fatalf("%s: unexpected receive (open=%v)", what, ok)
	default:
	}
}

func subscribe(t *testing.T, c Coord, topic string) (<-chan struct{}, func()) {
	t.Helper()
	ev, cancel, err := c.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	t.Cleanup(cancel)
	return ev, cancel
}

func publish(t *testing.T, c Coord, topic string) {
	t.Helper()
	if err := c.Publish(t.Context(), topic); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// barrier returns once every publish made on c before the call has been fanned out locally. Delivery
// is in order (one Redis connection, one receive loop), so a wake-up on a fresh topic proves it; this
// turns "nothing arrived" assertions from sleeps into certainties.
func barrier(t *testing.T, c Coord) {
	t.Helper()
	topic := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	ev, cancel := subscribe(t, c, topic)
	defer cancel()
	publish(t, c, topic)
	waitEvent(t, ev, "barrier")
}

func hit(t *testing.T, c Coord, key string, limit int64, window time.Duration) Limit {
	t.Helper()
	l, err := c.Hit(t.Context(), key, limit, window)
	if err != nil {
		t.Fatalf("Hit(%q): %v", key, err)
	}
	return l
}

func peek(t *testing.T, c Coord, key string, limit int64, window time.Duration) Limit {
	t.Helper()
	l, err := c.Peek(t.Context(), key, limit, window)
	if err != nil {
		t.Fatalf("Peek(%q): %v", key, err)
	}
	return l
}

// advancer is implemented by test Coords with a fake clock; others wait in real time.
type advancer interface{ Advance(time.Duration) }

func advance(c Coord, d time.Duration) {
	if a, ok := c.(advancer); ok {
		a.Advance(d)
		return
	}
	time.Sleep(d)
}

// runSuite is the behaviour every Coord must have; newCoord returns a fresh, isolated instance closed at
// test cleanup.
func runSuite(t *testing.T, newCoord func(t *testing.T) Coord) {
	t.Run("PublishDelivers", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		ev, _ := subscribe(t, c, "h1")
		publish(t, c, "h1")
		waitEvent(t, ev, "subscriber of h1")
	})

	t.Run("OtherTopicsNotWoken", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		a, _ := subscribe(t, c, "a")
		ab, _ := subscribe(t, c, "ab") // a prefix of another topic must not match it
		publish(t, c, "b")
		barrier(t, c)
		assertNoEvent(t, a, "subscriber of a")
		assertNoEvent(t, ab, "subscriber of ab")
	})

	t.Run("Coalesces", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		ev, _ := subscribe(t, c, "h1")
		for range 5 {
			publish(t, c, "h1")
		}
		barrier(t, c)
		waitEvent(t, ev, "first receive")
		assertNoEvent(t, ev, "second receive after 5 publishes")
	})

	t.Run("CancelStopsDeliveryAndIsIdempotent", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		gone, cancel := subscribe(t, c, "h1")
		kept, _ := subscribe(t, c, "h1")
		cancel()
		cancel()
		publish(t, c, "h1")
		waitEvent(t, kept, "remaining subscriber")
		if _, ok := <-gone; ok {
			t.Fatal("cancelled subscription received a wake-up; want its channel closed")
		}
	})

	t.Run("ContextEndsSubscription", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		ctx, stop := context.WithCancel(t.Context())
		ev, cancel, err := c.Subscribe(ctx, "h1")
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		stop()
		select {
		case _, ok := <-ev:
			if ok {
				t.Fatal("got a wake-up, want the channel closed")
			}
		case <-time.After(waitTimeout):
			t.Fatal("channel not closed after ctx was cancelled")
		}
		if _, _, err := c.Subscribe(ctx, "h1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe with a done ctx: err = %v, want context.Canceled", err)
		}
	})

	t.Run("SubscribeThenPublishNeverLost", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		for i := range 200 {
			topic := fmt.Sprintf("h%d", i)
			ev, cancel := subscribe(t, c, topic)
			publish(t, c, topic)
			waitEvent(t, ev, topic)
			cancel()
		}
	})

	t.Run("ManySubscribers", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		const n = 2000
		same := make([]<-chan struct{}, n)
		own := make([]<-chan struct{}, n)
		for i := range n {
			same[i], _ = subscribe(t, c, "shared")
			own[i], _ = subscribe(t, c, fmt.Sprintf("own%d", i))
		}
		publish(t, c, "shared")
		for i := range n {
			waitEvent(t, same[i], "shared subscriber")
		}
		for i := range n {
			publish(t, c, fmt.Sprintf("own%d", i))
		}
		for i := range n {
			waitEvent(t, own[i], "own-topic subscriber")
		}
	})

	t.Run("HitCountsAndBlocks", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		const window = time.Minute
		for i := int64(1); i <= 3; i++ {
			l := hit(t, c, "k", 3, window)
			if !l.Allowed || l.Count != i || l.RetryAfter != 0 {
				t.Fatalf("hit %d = %+v, want allowed, count %d, no RetryAfter", i, l, i)
			}
		}
		l := hit(t, c, "k", 3, window)
		if l.Allowed || l.Count != 4 || l.RetryAfter <= 0 || l.RetryAfter > window {
			t.Fatalf("hit 4 = %+v, want blocked, count 4, 0 < RetryAfter <= %v", l, window)
		}
		if other := hit(t, c, "k2", 3, window); !other.Allowed || other.Count != 1 {
			t.Fatalf("other key = %+v, want its own window", other)
		}
	})

	t.Run("WindowExpires", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		const window = 300 * time.Millisecond
		hit(t, c, "k", 1, window)
		l := hit(t, c, "k", 1, window)
		if l.Allowed || l.RetryAfter <= 0 || l.RetryAfter > window {
			t.Fatalf("second hit = %+v, want blocked with 0 < RetryAfter <= %v", l, window)
		}
		advance(c, l.RetryAfter+50*time.Millisecond)
		if l := hit(t, c, "k", 1, window); !l.Allowed || l.Count != 1 {
			t.Fatalf("hit after window = %+v, want a fresh window", l)
		}
	})

	t.Run("Reset", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		hit(t, c, "k", 1, time.Minute)
		if l := hit(t, c, "k", 1, time.Minute); l.Allowed {
			t.Fatalf("second hit = %+v, want blocked", l)
		}
		if err := c.Reset(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		if err := c.Reset(t.Context(), "never-hit"); err != nil {
			t.Fatalf("Reset of an unknown key: %v", err)
		}
		if l := hit(t, c, "k", 1, time.Minute); !l.Allowed || l.Count != 1 {
			t.Fatalf("hit after Reset = %+v, want count 1", l)
		}
	})

	t.Run("PeekDoesNotCount", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		if l := peek(t, c, "k", 2, time.Minute); !l.Allowed || l.Count != 0 || l.RetryAfter != 0 {
			t.Fatalf("peek on empty = %+v", l)
		}
		hit(t, c, "k", 2, time.Minute)
		for range 3 {
			if l := peek(t, c, "k", 2, time.Minute); !l.Allowed || l.Count != 1 {
				t.Fatalf("peek after one hit = %+v, want count 1, allowed", l)
			}
		}
		hit(t, c, "k", 2, time.Minute)
		// At the limit the next Hit would be refused, so Peek says so before the caller does the work.
		if l := peek(t, c, "k", 2, time.Minute); l.Allowed || l.Count != 2 || l.RetryAfter <= 0 {
			t.Fatalf("peek at limit = %+v, want refused with RetryAfter", l)
		}
		if l := hit(t, c, "k", 2, time.Minute); l.Count != 3 {
			t.Fatalf("hit after peeks = %+v, want count 3", l)
		}
	})

	t.Run("ConcurrentHitsCountExactly", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		const workers, each, limit = 50, 20, 500
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Go(func() {
				for range each {
					l, err := c.Hit(t.Context(), "k", limit, time.Minute)
					if err != nil {
						errs <- err
						return
					}
					if l.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if got := allowed.Load(); got != limit {
			t.Fatalf("allowed %d hits, want exactly %d", got, limit)
		}
		if l := peek(t, c, "k", limit, time.Minute); l.Count != workers*each {
			t.Fatalf("count = %d, want %d", l.Count, workers*each)
		}
	})

	t.Run("InvalidWindow", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		if _, err := c.Hit(t.Context(), "k", 1, 0); err == nil {
			t.Fatal("Hit with a zero window succeeded")
		}
		if _, err := c.Peek(t.Context(), "k", 1, time.Microsecond); err == nil {
			t.Fatal("Peek with a sub-millisecond window succeeded")
		}
	})

	t.Run("CloseFailsCleanly", func(t *testing.T) {
		t.Parallel()
		c := newCoord(t)
		ev, cancel := subscribe(t, c, "h1")
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		select {
		case _, ok := <-ev:
			if ok {
				t.Fatal("wake-up on Close, want the channel closed")
			}
		default:
			t.Fatal("subscriber channel still open after Close")
		}
		cancel() // after Close: must not panic
		ctx := t.Context()
		checks := map[string]error{
			"Publish": c.Publish(ctx, "h1"),
			"Reset":   c.Reset(ctx, "k"),
			"Ping":    c.Ping(ctx),
		}
		_, _, checks["Subscribe"] = c.Subscribe(ctx, "h1")
		_, checks["Hit"] = c.Hit(ctx, "k", 1, time.Minute)
		_, checks["Peek"] = c.Peek(ctx, "k", 1, time.Minute)
		for name, err := range checks {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// clockedMemory lets the suite move Memory's windows forward without sleeping.
type clockedMemory struct {
	*Memory
	*fakeClock
}

func newTestMemory(t *testing.T) *clockedMemory {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(clock.Now)
	t.Cleanup(func() { _ = m.Close() })
	return &clockedMemory{Memory: m, fakeClock: clock}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	runSuite(t, func(t *testing.T) Coord { return newTestMemory(t) })
}

func TestMemorySweepsExpiredWindows(t *testing.T) {
	t.Parallel()
	c := newTestMemory(t)
	for i := range 100 {
		hit(t, c, fmt.Sprintf("ip-%d", i), 5, time.Second)
	}
	c.Advance(sweepEvery + time.Second)
	hit(t, c, "fresh", 5, time.Second)
	c.Memory.mu.Lock()
	n := len(c.Memory.windows)
	c.Memory.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d windows retained after expiry, want 1", n)
	}
}

func TestMemoryNilClock(t *testing.T) {
	t.Parallel()
	m := NewMemory(nil)
	defer m.Close()
	if l := hit(t, m, "k", 1, time.Minute); !l.Allowed {
		t.Fatalf("hit = %+v", l)
	}
}

func BenchmarkMemoryHit(b *testing.B) {
	m := NewMemory(nil)
	defer m.Close()
	ctx := b.Context()
	for b.Loop() {
		if _, err := m.Hit(ctx, "k", 1<<62, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryPublishReceive(b *testing.B) {
	m := NewMemory(nil)
	defer m.Close()
	ctx := b.Context()
	ev, cancel, err := m.Subscribe(ctx, "h1")
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	for b.Loop() {
		if err := m.Publish(ctx, "h1"); err != nil {
			b.Fatal(err)
		}
		<-ev
	}
}

// BenchmarkMemoryFanout measures a publish reaching 1000 subscribers whose wake-ups are already pending,
// i.e. the cost of the lock plus non-blocking sends.
func BenchmarkMemoryFanout1000(b *testing.B) {
	m := NewMemory(nil)
	defer m.Close()
	ctx := b.Context()
	for range 1000 {
		if _, _, err := m.Subscribe(ctx, "h1"); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := m.Publish(ctx, "h1"); err != nil {
			b.Fatal(err)
		}
	}
}
