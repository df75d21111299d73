package app

import (
	"context"
	"sync"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
)

// startRunners starts every channel that keeps a connection of its own (Slack's Socket Mode,
// Telegram's long polling) and the audit log's sequencer, and returns the function that stops them
// and waits until they have. A runner that fails is logged; it retries its provider itself, so an
// error means it gave up.
func (a *App) startRunners(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := audit.NewSequencer(a.Audit, a.Store, a.Log).Run(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("audit sequencer stopped", "err", err)
		}
	})
	for _, c := range a.Escalation.Channels().All() {
		r, ok := c.(channel.Runner)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(ctx, a.Server.Host()); err != nil && ctx.Err() == nil {
				a.Log.Error("channel stopped", "channel", r.Kind(), "provider", r.Provider(), "err", err)
			}
		}()
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
