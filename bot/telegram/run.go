package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ony-ai/ony/channel"
)

// pollTimeout is how long one getUpdates waits for an update at Telegram.
const pollTimeout = 25 * time.Second

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// dispatchTimeout bounds handling one polled update, as the server bounds a webhook request.
const dispatchTimeout = 30 * time.Second

var allowedUpdates = []string{"message", "callback_query"}

// Run implements channel.Runner. With a webhook secret it registers the webhook (retrying until
// Telegram accepts it) and then only waits; without one it long-polls getUpdates and hands each
// update to the same code as the webhook. Long polling is for one replica: Telegram serves one
// poller per bot and answers any other with 409, which is logged once and retried with backoff.
func (c *Channel) Run(ctx context.Context, host channel.Host) error {
	if c.secret != "" {
		c.retry(ctx, "setWebhook", func() error {
			return c.call(ctx, "setWebhook", struct {
				URL            string   `json:"url"`
				SecretToken    string   `json:"secret_token"`
				AllowedUpdates []string `json:"allowed_updates"`
			}{c.public + "/hooks/telegram", c.secret, allowedUpdates}, nil, 0)
		})
		<-ctx.Done()
		return nil
	}
	// A webhook left over from an earlier configuration would make every getUpdates a 409.
	if !c.retry(ctx, "deleteWebhook", func() error {
		return c.call(ctx, "deleteWebhook", struct{}{}, nil, 0)
	}) {
		return nil
	}
	c.poll(ctx, host)
	return nil
}

// retry calls f until it succeeds (true) or ctx ends (false), backing off between failures.
func (c *Channel) retry(ctx context.Context, what string, f func() error) bool {
	backoff := minBackoff
	for {
		err := f()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		c.log.Warn("telegram: "+what+" failed, retrying", "err", err, "in", backoff)
		if c.wait(ctx, backoff) != nil {
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (c *Channel) poll(ctx context.Context, host channel.Host) {
	var offset int64
	backoff := minBackoff
	conflictLogged := false
	for ctx.Err() == nil {
		var updates []json.RawMessage
		err := c.call(ctx, "getUpdates", struct {
			Offset         int64    `json:"offset,omitempty"`
			Timeout        int      `json:"timeout"`
			AllowedUpdates []string `json:"allowed_updates"`
		}{offset, int(pollTimeout / time.Second), allowedUpdates}, &updates, pollTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.Code == http.StatusConflict {
				if !conflictLogged {
					c.log.Error("telegram: another poller or a webhook holds this bot's updates; long polling serves one replica only (set a webhook secret for several)")
					conflictLogged = true
				}
			} else {
				c.log.Warn("telegram: getUpdates failed, retrying", "err", err, "in", backoff)
			}
			if c.wait(ctx, backoff) != nil {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff, conflictLogged = minBackoff, false
		// Updates stay raw until here, so one we cannot read does not lose the batch.
		for _, raw := range updates {
			u, err := parseUpdate(raw)
			if id := updateID(raw); id >= offset {
				offset = id + 1 // past even an update we cannot read, or it comes back forever
			}
			if err != nil {
				c.log.Warn("telegram: malformed update dropped")
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, dispatchTimeout)
			c.dispatch(dctx, host, u)
			cancel()
		}
	}
}

func updateID(raw []byte) int64 {
	var v struct {
		ID int64 `json:"update_id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return -1
	}
	return v.ID
}
