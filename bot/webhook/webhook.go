// Package webhook is the signed webhook bridge channel: it posts each notification, and later its
// outcome, to bridges configured by name (Teams, Discord, ntfy...), signed the Standard Webhooks way.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/store"
)

var nameRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Kind posts to bridges only, never to people: a ladder targets them as webhook:<name>.
var Kind = channel.Kind{
	Name:       "webhook",
	Configured: true,
	TeamForm:   "webhook:<name>",
	Team: func(v string) error {
		if !nameRE.MatchString(v) {
			return fmt.Errorf("webhook name %q must be 1 to 63 lower-case letters, digits, '_' or '-', starting with a letter or digit, as in escalation.webhooks", v)
		}
		return nil
	},
}

// Webhook posts to bridges configured by name. Every post is signed the Standard Webhooks way, and
// its webhook-id is the notification key, so a bridge drops duplicates.
type Webhook struct {
	urls   map[string]string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// New builds the webhook channel; client should carry a timeout (the engine also bounds each call
// with escalation.send_timeout).
func New(urls map[string]string, secret []byte, client *http.Client, now func() time.Time) *Webhook {
	if now == nil {
		now = time.Now
	}
	return &Webhook{urls: urls, secret: secret, client: client, now: now}
}

func (*Webhook) Kind() string     { return Kind.Name }
func (*Webhook) Provider() string { return "builtin" }

// Has implements channel.Destinations: the bridges are the configured ones.
func (w *Webhook) Has(name string) bool { _, ok := w.urls[name]; return ok }

// Message is the JSON a bridge receives. Text is ready to show as is.
type Message struct {
	Type    string  `json:"type"` // handoff.escalated | handoff.finished
	Handoff Handoff `json:"handoff"`
	Ladder  string  `json:"ladder,omitempty"`
	Climb   int     `json:"climb"`
	Step    int     `json:"step"`
	Text    string  `json:"text"`
}

// Handoff is what a bridge learns about the handoff: no payload, no title.
type Handoff struct {
	ID         string     `json:"id"`
	Action     string     `json:"action,omitempty"`
	Risk       string     `json:"risk,omitempty"`
	Gist       string     `json:"gist,omitempty"`
	Status     string     `json:"status"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	ConsoleURL string     `json:"console_url,omitempty"`
}

// Notify implements channel.Channel.
func (w *Webhook) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	exp := n.ExpiresAt
	msg := Message{Type: "handoff.escalated", Ladder: n.Ladder, Climb: n.Climb, Step: n.Step,
		Handoff: Handoff{ID: n.HandoffID, Action: n.Action, Risk: n.Risk, Gist: n.Gist, Status: string(store.StatusPending),
			ExpiresAt: &exp, ConsoleURL: n.ConsoleURL},
		Text: n.Gist + "\nDecide: " + n.ConsoleURL} // the gist already leads with "[risk] action:"
	if err := w.post(ctx, n.Recipient.Address, n.Key, msg); err != nil {
		return channel.Delivery{}, err
	}
	return channel.Delivery{Ref: n.Recipient.Address, State: store.SendSent}, nil
}

// Update implements channel.Channel.
func (w *Webhook) Update(ctx context.Context, u channel.Update) error {
	msg := Message{Type: "handoff.finished", Handoff: Handoff{ID: u.HandoffID, Status: string(u.Status)}, Text: u.Text}
	return w.post(ctx, u.Ref, u.Key+"/final", msg)
}

func (w *Webhook) post(ctx context.Context, name, id string, msg Message) error {
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
