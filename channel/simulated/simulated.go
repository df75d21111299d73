// Package simulated stands in for providers Ony cannot reach — chat, SMS, calls — in `ony demo` and
// in tests: it logs every message as SIMULATED, keeps what it was asked to do for inspection, and
// lets a Behave function play the person at the other end.
package simulated

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

// Provider is a simulated provider of one channel kind.
type Provider struct {
	kind, provider string
	log            *slog.Logger
	// Behave, if set, decides what the provider reports (or that it errors).
	Behave func(channel.Notification) (channel.Delivery, error)

	mu      sync.Mutex
	sent    []channel.Notification
	updates []channel.Update
}

// New builds a simulated provider named provider of kind.
func New(kind, provider string, log *slog.Logger) *Provider {
	return &Provider{kind: kind, provider: provider, log: log}
}

func (s *Provider) Kind() string     { return s.kind }
func (s *Provider) Provider() string { return s.provider }

// Notify implements channel.Channel. Without Behave, the message is sent with reference
// "sim-"+key.
func (s *Provider) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	d := channel.Delivery{Ref: "sim-" + n.Key, State: store.SendSent}
	var err error
	if s.Behave != nil {
		d, err = s.Behave(n)
	}
	s.mu.Lock()
	s.sent = append(s.sent, n)
	s.mu.Unlock()
	state := string(d.State)
	if err != nil {
		state = "error"
	}
	s.log.InfoContext(ctx, "SIMULATED "+s.kind, "provider", s.provider, "to", n.Recipient.Name, "handoff", n.HandoffID,
		"risk", n.Risk, "action", n.Action, "step", n.Step, "attempt", n.Attempt, "result", state)
	return d, err
}

// Update implements channel.Channel.
func (s *Provider) Update(ctx context.Context, u channel.Update) error {
	s.mu.Lock()
	s.updates = append(s.updates, u)
	s.mu.Unlock()
	s.log.InfoContext(ctx, "SIMULATED "+s.kind+" update", "provider", s.provider, "to", u.Recipient.Name, "handoff", u.HandoffID, "text", u.Text)
	return nil
}

// Sent returns what was notified so far.
func (s *Provider) Sent() []channel.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]channel.Notification(nil), s.sent...)
}

// Updates returns what was updated so far.
func (s *Provider) Updates() []channel.Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]channel.Update(nil), s.updates...)
}
