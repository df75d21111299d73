package coord

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// sweepEvery bounds how long expired windows linger in Memory; keys such as client IPs are unbounded.
const sweepEvery = time.Minute

// Memory is a Coord for a single node: notifications only reach this process.
type Memory struct {
	now    func() time.Time
	hub    hub
	closed atomic.Bool

	mu        sync.Mutex
	windows   map[string]memWindow
	nextSweep time.Time
}

type memWindow struct {
	count int64
	ends  time.Time
}

// NewMemory returns an in-process Coord. clock drives rate-limit windows; nil means time.Now.
func NewMemory(clock func() time.Time) *Memory {
	if clock == nil {
		clock = time.Now
	}
	return &Memory{now: clock, windows: make(map[string]memWindow)}
}

// Publish wakes this process's subscribers of topic.
func (m *Memory) Publish(ctx context.Context, topic string) error {
	if err := m.usable(ctx); err != nil {
		return fmt.Errorf("coord: publish: %w", err)
	}
	m.hub.publish(topic)
	return nil
}

// Subscribe implements Coord.
func (m *Memory) Subscribe(ctx context.Context, topic string) (<-chan struct{}, func(), error) {
	if m.closed.Load() {
		return nil, nil, ErrClosed
	}
	return m.hub.subscribe(ctx, topic)
}

// Hit implements Coord.
func (m *Memory) Hit(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := m.usable(ctx); err != nil {
		return Limit{}, fmt.Errorf("coord: hit: %w", err)
	}
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweep(now)
	w, ok := m.windows[key]
	if !ok || !now.Before(w.ends) {
		w = memWindow{ends: now.Add(window)}
	}
	w.count++
	m.windows[key] = w
	return limitFor(w.count, 0, limit, w.ends.Sub(now), window), nil
}

// Peek implements Coord.
func (m *Memory) Peek(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error) {
	if err := m.usable(ctx); err != nil {
		return Limit{}, fmt.Errorf("coord: peek: %w", err)
	}
	if err := checkWindow(window); err != nil {
		return Limit{}, err
	}
	now := m.now()
	m.mu.Lock()
	w, ok := m.windows[key]
	m.mu.Unlock()
	if !ok || !now.Before(w.ends) {
		return limitFor(0, 1, limit, 0, window), nil
	}
	return limitFor(w.count, 1, limit, w.ends.Sub(now), window), nil
}

// Reset implements Coord.
func (m *Memory) Reset(ctx context.Context, key string) error {
	if err := m.usable(ctx); err != nil {
		return fmt.Errorf("coord: reset: %w", err)
	}
	m.mu.Lock()
	delete(m.windows, key)
	m.mu.Unlock()
	return nil
}

// Ping implements Coord.
func (m *Memory) Ping(ctx context.Context) error {
	if err := m.usable(ctx); err != nil {
		return fmt.Errorf("coord: ping: %w", err)
	}
	return nil
}

// Close closes every subscriber's channel; later calls return ErrClosed.
func (m *Memory) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	m.hub.close()
	m.mu.Lock()
	m.windows = make(map[string]memWindow)
	m.mu.Unlock()
	return nil
}

func (m *Memory) usable(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// sweep drops expired windows at most once per sweepEvery, keeping Hit amortised O(1). Callers hold m.mu.
func (m *Memory) sweep(now time.Time) {
	if now.Before(m.nextSweep) {
		return
	}
	m.nextSweep = now.Add(sweepEvery)
	for k, w := range m.windows {
		if !now.Before(w.ends) {
			delete(m.windows, k)
		}
	}
}
