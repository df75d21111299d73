// Package channeltest holds what the channels' tests share: the fake half of channel.Host that is
// the same for every channel.
package channeltest

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Dedupe is Host.Once for a fake host to embed: keys are remembered in memory for good, calls are
// counted, and OnceErr (set before use) fails every call as a coordination outage would.
type Dedupe struct {
	OnceErr error

	mu   sync.Mutex
	seen map[string]bool
	n    int
}

// Once reports whether key is new, as the real Host does across replicas.
func (o *Dedupe) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	if o.OnceErr != nil {
		return false, o.OnceErr
	}
	if ttl <= 0 {
		return false, errors.New("channeltest: ttl must be positive")
	}
	if o.seen[key] {
		return false, nil
	}
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	o.seen[key] = true
	return true, nil
}

// Onces is how many times Once was called.
func (o *Dedupe) Onces() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}
