// Package coord holds Ony's ephemeral coordination: change notifications fanned out to every replica
// and fixed-window counters for rate limits. Redis when configured, memory on a single node.
package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("coord: closed")

// Coord is implemented by Memory (one node) and Redis (any number of replicas).
//
// Notifications carry no payload and may be spurious: a subscriber that wakes re-reads the system of
// record and goes back to waiting. Redis wakes every subscriber after it re-establishes its subscription,
// because publishes made while it was disconnected are lost.
type Coord interface {
	// Publish tells every subscriber of topic, on every replica, that something changed. Payload-free on purpose:
	// subscribers re-read the system of record.
	Publish(ctx context.Context, topic string) error
	// Subscribe registers interest in topic. When it returns, a Publish that happens afterwards on any replica
	// is guaranteed to be delivered (barring Redis disconnects, after which every subscriber is woken anyway),
	// so callers subscribe BEFORE reading the database to avoid a lost wake-up.
	//
	// events has a buffer of one, so publishes that arrive while a wake-up is pending coalesce into it.
	// events is closed when the subscription ends: on cancel, when ctx is done, or on Close. Receivers should
	// use the two-value receive (or select on their own ctx) so a closed channel is not mistaken for a wake-up.
	// cancel is idempotent, safe to call after Close, and frees everything.
	Subscribe(ctx context.Context, topic string) (events <-chan struct{}, cancel func(), err error)
	// Hit counts one event against key in a fixed window and reports whether the count, including this
	// event, is within limit. The window starts at the first hit.
	Hit(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error)
	// Peek reports the current window without counting; Allowed tells whether one more Hit would be
	// within limit, so a caller can refuse before doing expensive or sensitive work.
	Peek(ctx context.Context, key string, limit int64, window time.Duration) (Limit, error)
	// Reset clears key's window (e.g. after a successful login).
	Reset(ctx context.Context, key string) error
	// Ping reports whether the Coord can currently publish and receive notifications.
	Ping(ctx context.Context) error
	// Close releases everything and closes every subscriber's channel. Later calls return ErrClosed;
	// closing twice is a no-op.
	Close() error
}

// Limit is the state of one fixed window.
type Limit struct {
	Allowed bool
	Count   int64
	// RetryAfter is when the window ends; > 0 only when !Allowed.
	RetryAfter time.Duration
}

var (
	_ Coord = (*Memory)(nil)
	_ Coord = (*Redis)(nil)
)

// checkWindow rejects windows that Redis cannot express (PEXPIRE has millisecond granularity), and applies
// the same rule to Memory so both behave alike.
func checkWindow(window time.Duration) error {
	if window < time.Millisecond {
		return fmt.Errorf("coord: window %v is shorter than 1ms", window)
	}
	return nil
}

// limitFor turns a window's state into a Limit. extra is 0 for Hit (the event is already in count) and
// 1 for Peek (would one more fit?).
func limitFor(count, extra, limit int64, ttl, window time.Duration) Limit {
	l := Limit{Count: count, Allowed: count+extra <= limit}
	if !l.Allowed {
		l.RetryAfter = ttl
		if l.RetryAfter <= 0 {
			// No live window (e.g. limit 0 peeked before any hit): a full window is the honest upper bound.
			l.RetryAfter = window
		}
	}
	return l
}

// hub fans notifications out to local subscribers. One lock and non-blocking sends keep thousands of
// long-polling subscribers cheap: a publish never waits for a slow receiver, it relies on the buffered
// slot already holding a wake-up.
type hub struct {
	mu     sync.RWMutex
	topics map[string]map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch chan struct{}
}

func (h *hub) subscribe(ctx context.Context, topic string) (<-chan struct{}, func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("coord: subscribe: %w", err)
	}
	s := &subscriber{ch: make(chan struct{}, 1)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if h.topics == nil {
		h.topics = make(map[string]map[*subscriber]struct{})
	}
	set := h.topics[topic]
	if set == nil {
		set = make(map[*subscriber]struct{})
		h.topics[topic] = set
	}
	set[s] = struct{}{}
	h.mu.Unlock()

	remove := func() { h.remove(topic, s) }
	// Ties the subscription to ctx so a forgotten cancel cannot leak once the request is over.
	stop := context.AfterFunc(ctx, remove)
	return s.ch, func() {
		stop()
		remove()
	}, nil
}

func (h *hub) remove(topic string, s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.topics[topic]
	if _, ok := set[s]; !ok {
		return // already cancelled, or Close got there first
	}
	delete(set, s)
	if len(set) == 0 {
		delete(h.topics, topic)
	}
	close(s.ch)
}

func (h *hub) publish(topic string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.topics[topic] {
		notify(s.ch)
	}
}

func (h *hub) wakeAll() {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.topics {
		for s := range set {
			notify(s.ch)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, set := range h.topics {
		for s := range set {
			close(s.ch)
		}
	}
	h.topics = nil
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // a wake-up is already pending; this one coalesces into it
	}
}
