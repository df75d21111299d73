package escalation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/store"
)

// Console puts the handoff in the person's console inbox. The send row is the inbox entry, so there
// is nothing to deliver; people decide there with their session.
type Console struct{}

func (Console) Kind() string         { return KindConsole }
func (Console) Provider() string     { return "builtin" }
func (Console) TakesDecisions() bool { return false }

// Notify implements Channel.
func (Console) Notify(context.Context, Notification) (Delivery, error) {
	return Delivery{State: store.SendDelivered}, nil
}

// Update implements Channel; the inbox reads the handoff's state itself.
func (Console) Update(context.Context, Update) error { return nil }

// Webhook posts to bridges (Teams, Discord, ntfy...) configured by name. Every post is signed the
// Standard Webhooks way, and its webhook-id is the notification key, so a bridge drops duplicates.
type Webhook struct {
	urls   map[string]string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook builds the webhook channel; client should carry a timeout (the engine also bounds each
// call with escalation.send_timeout).
func NewWebhook(urls map[string]string, secret []byte, client *http.Client, now func() time.Time) *Webhook {
	if now == nil {
		now = time.Now
	}
	return &Webhook{urls: urls, secret: secret, client: client, now: now}
}

func (*Webhook) Kind() string         { return KindWebhook }
func (*Webhook) Provider() string     { return "builtin" }
func (*Webhook) TakesDecisions() bool { return false }

// WebhookMessage is the JSON a bridge receives. Text is ready to show as is.
type WebhookMessage struct {
	Type    string         `json:"type"` // handoff.escalated | handoff.finished
	Handoff WebhookHandoff `json:"handoff"`
	Ladder  string         `json:"ladder,omitempty"`
	Climb   int            `json:"climb"`
	Step    int            `json:"step"`
	Text    string         `json:"text"`
}

// WebhookHandoff is what a bridge learns about the handoff: no payload, no title.
type WebhookHandoff struct {
	ID         string     `json:"id"`
	Action     string     `json:"action,omitempty"`
	Risk       string     `json:"risk,omitempty"`
	Gist       string     `json:"gist,omitempty"`
	Status     string     `json:"status"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	ConsoleURL string     `json:"console_url,omitempty"`
}

// Notify implements Channel.
func (w *Webhook) Notify(ctx context.Context, n Notification) (Delivery, error) {
	exp := n.ExpiresAt
	msg := WebhookMessage{Type: "handoff.escalated", Ladder: n.Ladder, Climb: n.Climb, Step: n.Step,
		Handoff: WebhookHandoff{ID: n.HandoffID, Action: n.Action, Risk: n.Risk, Gist: n.Gist, Status: string(store.StatusPending),
			ExpiresAt: &exp, ConsoleURL: n.ConsoleURL},
		Text: n.Gist + "\nDecide: " + n.ConsoleURL} // the gist already leads with "[risk] action:"
	if err := w.post(ctx, n.Recipient.Address, n.Key, msg); err != nil {
		return Delivery{}, err
	}
	return Delivery{Ref: n.Recipient.Address, State: store.SendSent}, nil
}

// Update implements Channel.
func (w *Webhook) Update(ctx context.Context, u Update) error {
	msg := WebhookMessage{Type: "handoff.finished", Handoff: WebhookHandoff{ID: u.HandoffID, Status: string(u.Status)}, Text: u.Text}
	return w.post(ctx, u.Ref, u.Key+"/final", msg)
}

func (w *Webhook) post(ctx context.Context, name, id string, msg WebhookMessage) error {
	target, ok := w.urls[name]
	if !ok {
		return fmt.Errorf("webhook %q is not configured", name)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	// The URL may itself be a credential: errors name the bridge, never the address.
	if err := auth.PostWebhook(ctx, w.client, target, "ony-escalation/1", w.secret, id, w.now(), body); err != nil {
		return fmt.Errorf("webhook %q: %w", name, err)
	}
	return nil
}

// Simulated stands in for a provider Ony cannot reach (in `ony demo` and in tests). It logs every
// message as SIMULATED, keeps them for inspection, and lets a Behave function play the person.
type Simulated struct {
	kind, provider string
	takes          bool
	log            *slog.Logger
	// Behave, if set, decides what the provider reports (or that it errors).
	Behave func(Notification) (Delivery, error)

	mu      sync.Mutex
	sent    []Notification
	updates []Update
}

// NewSimulated builds a simulated provider of kind.
func NewSimulated(kind, provider string, takesDecisions bool, log *slog.Logger) *Simulated {
	return &Simulated{kind: kind, provider: provider, takes: takesDecisions, log: log}
}

func (s *Simulated) Kind() string         { return s.kind }
func (s *Simulated) Provider() string     { return s.provider }
func (s *Simulated) TakesDecisions() bool { return s.takes }

// Notify implements Channel.
func (s *Simulated) Notify(ctx context.Context, n Notification) (Delivery, error) {
	d := Delivery{Ref: "sim-" + n.Key, State: store.SendSent}
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

// Update implements Channel.
func (s *Simulated) Update(ctx context.Context, u Update) error {
	s.mu.Lock()
	s.updates = append(s.updates, u)
	s.mu.Unlock()
	s.log.InfoContext(ctx, "SIMULATED "+s.kind+" update", "provider", s.provider, "to", u.Recipient.Name, "handoff", u.HandoffID, "text", u.Text)
	return nil
}

// Sent returns what was notified so far.
func (s *Simulated) Sent() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.sent...)
}

// Updates returns what was updated so far.
func (s *Simulated) Updates() []Update {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Update(nil), s.updates...)
}
