package oidc

import (
	"context"
	"sync"
	"time"
)

// RetryAfter is how long Lazy waits after a failed discovery before trying again.
const RetryAfter = 30 * time.Second

// Lazy builds the Provider on first use and retries a failed discovery at most every RetryAfter, so
// a provider that is down while Ony starts neither blocks start-up nor turns SSO off until a restart.
// Password sign-in does not depend on it.
type Lazy struct {
	cfg  Config
	deps Deps

	mu   sync.Mutex
	p    *Provider
	err  error
	last time.Time
}

// NewLazy checks nothing over the network; call Get (or Warm at start) to discover.
func NewLazy(cfg Config, d Deps) *Lazy { return &Lazy{cfg: cfg, deps: d} }

// Get returns the Provider, discovering it if no attempt succeeded yet. Within RetryAfter of a
// failure it returns that failure without calling the provider again.
func (l *Lazy) Get(ctx context.Context) (*Provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		return l.p, nil
	}
	now := time.Now
	if l.deps.Now != nil {
		now = l.deps.Now
	}
	if l.err != nil && now().Sub(l.last) < RetryAfter {
		return nil, l.err
	}
	l.p, l.err = New(ctx, l.cfg, l.deps)
	l.last = now()
	return l.p, l.err
}
