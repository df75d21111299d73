package telnyx

import (
	"context"
	"time"
)

// SetWait replaces the provider's sleep between command retries, so retry tests take no real time;
// f sees each wait.
func (p *Provider) SetWait(f func(ctx context.Context, d time.Duration) error) { p.wait = f }
