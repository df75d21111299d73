package telegram

import (
	"context"
	"time"
)

// SetWait replaces the channel's sleep between retries, so tests of retry_after and backoff take no
// real time; f sees each wait.
func (c *Channel) SetWait(f func(ctx context.Context, d time.Duration) error) { c.wait = f }
