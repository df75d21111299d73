package slack

import (
	"context"
	"errors"
	"io"
	"log"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/ony-ai/ony/channel"
)

// Run keeps a Socket Mode connection when an app token is configured, so a self-hoster needs no
// public URL; taps and /ony commands arriving on it go through the same code as the HTTP routes.
// Without an app token Slack reaches Ony over HTTP and Run returns at once. Run returns nil when ctx
// is done.
func (c *Channel) Run(ctx context.Context, host channel.Host) error {
	if c.cfg.AppToken == "" {
		return nil
	}
	// apps.connections.open takes the app-level token, never the bot token.
	api := slack.New(c.cfg.BotToken, slack.OptionAPIURL(c.cfg.APIURL), slack.OptionAppLevelToken(c.cfg.AppToken),
		slack.OptionHTTPClient(bearer{client: c.http, token: c.cfg.AppToken}))
	opts := []socketmode.Option{socketmode.OptionLog(log.New(io.Discard, "", 0)), socketmode.OptionReadLimit(1 << 20)}
	if c.cfg.Dialer != nil {
		opts = append(opts, socketmode.OptionDialer(c.cfg.Dialer))
	}
	sm := socketmode.New(api, opts...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.consume(ctx, sm, host)
	}()
	defer func() { <-done }()
	wait := time.Second
	for {
		start := time.Now()
		// RunContext reconnects by itself; it returns when ctx ends or a connection cannot be made
		// at all (a revoked token, say), which we keep retrying, slowly.
		err := sm.RunContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			wait = time.Second
		}
		c.log.WarnContext(ctx, "slack: Socket Mode connection failed, retrying", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// consume handles Socket Mode events until ctx ends: each envelope is acknowledged within Slack's
// 3 s, and one redelivered is acted on once.
func (c *Channel) consume(ctx context.Context, sm *socketmode.Client, host channel.Host) {
	for {
		var ev socketmode.Event
		select {
		case <-ctx.Done():
			return
		case ev = <-sm.Events:
		}
		switch ev.Type {
		case socketmode.EventTypeConnected:
			c.log.InfoContext(ctx, "slack: Socket Mode connected")
		case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
			c.log.WarnContext(ctx, "slack: Socket Mode could not connect", "event", string(ev.Type))
		case socketmode.EventTypeInteractive:
			cb, ok := ev.Data.(slack.InteractionCallback)
			if !c.ack(ctx, sm, host, ev.Request) || !ok {
				continue
			}
			t, err := tapFrom(cb)
			if err == nil || errors.Is(err, errBadValue) {
				c.act(ctx, host, t, err)
			}
		case socketmode.EventTypeSlashCommand:
			cmd, ok := ev.Data.(slack.SlashCommand)
			if ev.Request == nil || ev.Request.EnvelopeID == "" {
				continue
			}
			if !ok || cmd.UserID == "" || !c.once(ctx, host, "slack:envelope:"+ev.Request.EnvelopeID) {
				_ = sm.AckCtx(ctx, ev.Request.EnvelopeID, nil)
				continue
			}
			text := c.runCommand(ctx, host, command{user: cmd.UserID, text: cmd.Text})
			if err := sm.AckCtx(ctx, ev.Request.EnvelopeID, map[string]string{"response_type": "ephemeral", "text": text}); err != nil {
				c.log.WarnContext(ctx, "slack: could not acknowledge a command", "error", err)
			}
		case socketmode.EventTypeEventsAPI:
			c.ack(ctx, sm, host, ev.Request)
		}
	}
}

// ack acknowledges an envelope and reports whether it is new (Slack redelivers what it thinks was
// not acknowledged).
func (c *Channel) ack(ctx context.Context, sm *socketmode.Client, host channel.Host, req *socketmode.Request) bool {
	if req == nil || req.EnvelopeID == "" {
		return false
	}
	if err := sm.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
		c.log.WarnContext(ctx, "slack: could not acknowledge an envelope", "error", err)
	}
	return c.once(ctx, host, "slack:envelope:"+req.EnvelopeID)
}
