package escalation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ony-ai/ony/store"
)

// Channel is one way of reaching people, offered by one provider: the console inbox, a webhook bridge,
// and later Slack, Telegram, SMS and calls on each telephony provider. The engine knows channels only
// through this interface; channels never import each other.
type Channel interface {
	// Kind is one of the Kind* constants; Provider names the implementation ("builtin", "twilio",
	// "simulated"...). Several providers of one kind give a rung failover.
	Kind() string
	Provider() string
	// TakesDecisions reports whether a person can decide on this channel (buttons, replies, keypad). The
	// engine then mints a single-use decision token for each notification.
	TakesDecisions() bool
	// Notify reaches one recipient. n.Key is the same on every retry of one (handoff, step, target,
	// attempt): providers that accept idempotency keys get it, receivers can drop duplicates by it. A
	// returned error makes the engine try the next provider of the kind.
	Notify(ctx context.Context, n Notification) (Delivery, error)
	// Update rewrites what Notify sent once the handoff is final ("Approved by Ana via phone, 14:03").
	// It may be called more than once for one message and must be harmless when it is.
	Update(ctx context.Context, u Update) error
}

// Notification is what a channel may tell a person: the action, the server-derived risk and the
// redacted gist — never the payload, the title or anything else the agent wrote unfiltered.
type Notification struct {
	Key       string // idempotency key, stable across retries
	OrgID     string
	HandoffID string
	Action    string
	Risk      string
	Gist      string
	// Options are the answers a person can give; labels have passed the redactor.
	Options    []store.Option
	ConsoleURL string
	ExpiresAt  time.Time
	Ladder     string
	Climb      int
	Step       int
	StepName   string
	Attempt    int
	Recipient  Recipient
	// Token lets the recipient decide once without a session; empty unless the channel takes decisions.
	Token string
}

// Recipient is who a notification goes to.
type Recipient struct {
	UserID string // empty for a team destination
	Name   string
	// Address is where the channel delivers: a phone number, a Slack or Telegram id, a webhook name,
	// or the user id for the console.
	Address  string
	Timezone *time.Location
}

// Delivery is what a provider reported for one notification.
type Delivery struct {
	// Ref is the provider's id for the message or call, kept so the message can be updated later.
	Ref string
	// State is SendSent, SendDelivered, SendAnswered, SendNoAnswer or SendBusy. Providers that learn
	// the outcome later (a call's status callback) report it through Engine.Report.
	State store.SendState
}

// Update is a final state to show on something Notify sent.
type Update struct {
	Key       string
	OrgID     string
	HandoffID string
	Ref       string
	Recipient Recipient
	Status    store.Status
	// Text is the one-line outcome, in the recipient's time zone.
	Text string
}

// Registry holds the configured channels. Providers of one kind are tried in the order registered,
// unless a step names its own order.
type Registry struct {
	byKind map[string][]Channel
}

// NewRegistry registers channels; two channels with the same kind and provider are an error.
func NewRegistry(chs ...Channel) (*Registry, error) {
	r := &Registry{byKind: map[string][]Channel{}}
	for _, c := range chs {
		if !slices.Contains(Kinds, c.Kind()) {
			return nil, fmt.Errorf("escalation: channel kind %q is unknown", c.Kind())
		}
		for _, have := range r.byKind[c.Kind()] {
			if have.Provider() == c.Provider() {
				return nil, fmt.Errorf("escalation: %s provider %q registered twice", c.Kind(), c.Provider())
			}
		}
		r.byKind[c.Kind()] = append(r.byKind[c.Kind()], c)
	}
	return r, nil
}

// Providers returns kind's channels for failover: those named in order first (in that order, unknown
// names ignored), then — only when order is empty — every registered provider.
func (r *Registry) Providers(kind string, order []string) []Channel {
	all := r.byKind[kind]
	if len(order) == 0 {
		return all
	}
	var out []Channel
	for _, name := range order {
		for _, c := range all {
			if c.Provider() == name {
				out = append(out, c)
			}
		}
	}
	return out
}

// Provider finds one channel by kind and provider name (to update what it sent).
func (r *Registry) Provider(kind, name string) Channel {
	for _, c := range r.byKind[kind] {
		if c.Provider() == name {
			return c
		}
	}
	return nil
}

// Kinds lists the registered kinds.
func (r *Registry) Kinds() []string {
	var out []string
	for _, k := range Kinds {
		if len(r.byKind[k]) > 0 {
			out = append(out, k)
		}
	}
	return out
}
