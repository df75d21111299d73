// Package channel is the seam every way of reaching a person plugs into: what a kind of channel is
// (Kind, with the contact it reaches people on), what a channel does (Channel), and how a channel
// receives HTTP from its provider (Receiver). The escalation engine, the ladder parser and people's
// settings know channels only through this package; docs/channels.md says how to add one.
//
// Where channels live: the console inbox here; chat in bot/ (bot/slack, bot/telegram, the signed
// webhook bridge in bot/webhook); telephony in voice/ (SMS and calls on each provider, the media
// bridge, the voice agent); providers that stand in for unreachable ones in channel/simulated.
package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/ony-ai/ony/store"
)

// Channel is one kind of channel offered by one provider. Several providers of one kind give a rung
// failover; channels never import each other.
type Channel interface {
	// Kind names the channel's Kind; Provider names the implementation ("builtin", "twilio",
	// "simulated"...). Inbound routes of a provider are mounted under /hooks/{provider}/.
	Kind() string
	Provider() string
	// Notify reaches one recipient. n.Key is the same on every retry of one (handoff, step, target,
	// attempt): providers that accept idempotency keys get it, receivers can drop duplicates by it. A
	// returned error makes the engine try the next provider of the kind.
	Notify(ctx context.Context, n Notification) (Delivery, error)
	// Update rewrites what Notify sent once the handoff is final ("Approved by Ana via call, 14:03").
	// It may be called more than once for one message and must be harmless when it is.
	Update(ctx context.Context, u Update) error
}

// Destinations is implemented by the channels of a Configured kind: Has reports whether value is
// one of the shared destinations this provider reaches.
type Destinations interface {
	Has(value string) bool
}

// HasDestination reports whether some provider of kind reaches the shared destination value; for a
// kind that is not Configured, every well-formed value counts.
func (r *Registry) HasDestination(kind, value string) bool {
	k, ok := r.kinds.Kind(kind)
	if !ok {
		return false
	}
	if !k.Configured {
		return true
	}
	for _, c := range r.byKind[kind] {
		if d, ok := c.(Destinations); ok && d.Has(value) {
			return true
		}
	}
	return false
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
	// Agent is the name of the device (agent) that asked, as an admin named it.
	Agent string
	// Reasons are the risk's reason codes, derived by the server (closed words such as
	// "production_environment"), for a voice agent to explain the risk.
	Reasons []string
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
	// Token lets the recipient decide once without a session; empty unless the kind takes decisions.
	// For a team destination it decides as whichever linked member answers (Answer.From).
	Token string
	// StepUp is set when approving this handoff needs a second factor (the org's step-up policy):
	// a chat channel offers approval only as a link to the console, a keypad asks for the TOTP code.
	// Denying never needs one.
	StepUp bool
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
	// Ref is the provider's own id for the message or call. It is how the message is updated later,
	// and how a status callback that carries only the provider's id finds its send.
	Ref string
	// State is SendSent, SendDelivered, SendAnswered, SendNoAnswer or SendBusy. Providers that learn
	// the outcome later (a call's status callback) report it through Host.Report.
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
	kinds  *Kinds
	byKind map[string][]Channel
}

// NewRegistry registers channels of the given kinds; a channel of an unknown kind, or two channels
// with the same kind and provider, are errors.
func NewRegistry(kinds *Kinds, chs ...Channel) (*Registry, error) {
	r := &Registry{kinds: kinds, byKind: map[string][]Channel{}}
	for _, c := range chs {
		if _, ok := kinds.Kind(c.Kind()); !ok {
			return nil, fmt.Errorf("channel: kind %q is not registered", c.Kind())
		}
		for _, have := range r.byKind[c.Kind()] {
			if have.Provider() == c.Provider() {
				return nil, fmt.Errorf("channel: %s provider %q registered twice", c.Kind(), c.Provider())
			}
		}
		r.byKind[c.Kind()] = append(r.byKind[c.Kind()], c)
	}
	return r, nil
}

// Kinds is the registry's kinds.
func (r *Registry) Kinds() *Kinds { return r.kinds }

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

// All returns every registered channel, kind by kind in the order the kinds were registered.
func (r *Registry) All() []Channel {
	var out []Channel
	for _, k := range r.kinds.Names() {
		out = append(out, r.byKind[k]...)
	}
	return out
}
