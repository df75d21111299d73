package channel

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/store"
)

// Receiver is a channel that receives HTTP from its provider: button presses, SMS replies, call
// webhooks, status callbacks. Its routes are mounted under /hooks/{provider}/ (Provider() of the
// channel), outside sessions and CSRF, with the API's body limit and timeouts. Each route verifies
// its provider's signature itself, on the raw body, before it parses anything; a request that fails
// the check changes nothing.
type Receiver interface {
	Channel
	// Routes returns the channel's routes, which act on Ony through host. Several channels of one
	// provider (SMS and calls at Twilio) share its prefix, and each path may be claimed once.
	Routes(host Host) []Route
}

// Route is one inbound route of a provider.
type Route struct {
	// Method is the HTTP method ("POST"); Path is below /hooks/{provider}: "interactions" is
	// /hooks/slack/interactions, and "" is /hooks/telegram itself.
	Method, Path string
	Handler      http.Handler
	// Stream marks a long-lived connection (a call's media websocket): it gets neither the request
	// body limit nor the request deadline, and bounds itself.
	Stream bool
}

// Host is what an inbound route may do with Ony.
type Host interface {
	// Decide spends a decision token that a person sent back (the token a Notification carried) and
	// decides the handoff with the option they chose: the same path, role checks, first-decision-wins
	// rule and audit leaf as the console. A late answer gets a problem coded already_final whose
	// message names the decision that won ("this handoff was already approved by Ana via call"), or
	// coded expired when it came at or after the handoff's expires_at (which it then expires). Every
	// refusal is a problem whose message may be shown, privately, to whoever answered.
	Decide(ctx context.Context, a Answer) (store.Handoff, error)
	// Report records what a provider later learned about something it sent (a call's status), found
	// by the provider's own reference for it (Delivery.Ref). An unknown reference is store.ErrNotFound.
	Report(ctx context.Context, provider, ref string, state store.SendState) error
	// Link spends a one-time linking code a person made in the console ("/ony link <code>", a Telegram
	// deep link) and makes address their contact of kind's contact. It is audited without the address.
	// A wrong, used or expired code is a problem coded invalid_link_code; attempts are throttled per
	// address.
	Link(ctx context.Context, code, kind, address string) (LinkedPerson, error)
	// Outcome records how a call that was answered ended (one of CallOutcomes: "approved",
	// "stepup_failed", ...) on its send, found by the provider's reference, as Report does; the send
	// then reads answered. An unknown reference is store.ErrNotFound.
	Outcome(ctx context.Context, provider, ref, outcome string) error
	// Recall rebuilds what the notification that carried token said (action, risk, gist, options,
	// step-up, console link) while its handoff is pending, for a call document a provider fetches
	// later or a "press 9 to repeat". A token that is unknown, spent or sent on another kind is a
	// problem coded invalid_decision_token; a decided handoff answers already_final.
	Recall(ctx context.Context, token, channel string) (Notification, error)
	// Once reports whether key is new within ttl, on every replica (a provider's retry of a request
	// already handled, a Telegram update_id seen before). Keys are namespaced by the caller.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Answer is what someone sent back on a channel without sessions: a button tap, an SMS reply, a
// keypad choice.
type Answer struct {
	// Token is the decision token the notification carried.
	Token string
	// Option is the option's id; when a channel cannot carry ids (Telegram's 64-byte callback_data),
	// Index is the option's 1-based position instead and Option is empty.
	Option string
	Index  int
	// Channel is the kind the answer came in on; a token sent on another kind is not valid there.
	Channel string
	// From is who answered, as their address on the kind's contact (a Slack member id, a Telegram user
	// id, a phone number). A token sent to one person decides only when From is that person's
	// address; a token posted to a team destination decides as the member whose contact From is.
	From string
	// TOTP is a second-factor code the channel collected (the keypad); chat channels leave it empty,
	// and approvals at a step-up risk are then refused with stepup_required.
	TOTP string
	// Code, instead of Token, is the short code a notification showed (SMS: "Reply Y 4821"): with
	// From it finds the token that notification carried (ShortCode of its hash), among the open
	// tokens sent to From on Channel. A code that matches none, or more than one, is refused.
	Code string
	// Choice, when Option and Index are empty, picks an option by what it does: "approve" is the first
	// option that approves, "deny" the first that does not (SMS's Y and N).
	Choice string
}

// CallOutcomes are how an answered call can end (voice.Prompt.Outcome): closed words, so they may be
// stored and counted.
var CallOutcomes = []string{"approved", "denied", "stepup_failed", "no_input", "already_final", "refused", "error", "machine"}

// Choices for Answer.Choice.
const (
	ChoiceApprove = "approve"
	ChoiceDeny    = "deny"
)

// ShortCode is the 4-digit code a notification shows for its decision token (SMS replies name it):
// derived from the token's hash, so the server can find the token again without storing the code.
// Two open tokens of one person may share a code (1 in 10,000); such a reply is refused as ambiguous.
func ShortCode(tokenHash []byte) string {
	if len(tokenHash) < 4 {
		return ""
	}
	n := (uint32(tokenHash[0])<<24 | uint32(tokenHash[1])<<16 | uint32(tokenHash[2])<<8 | uint32(tokenHash[3])) % 10000
	return fmt.Sprintf("%04d", n)
}

// LinkedPerson is who a linking code linked, for the channel's confirmation ("Linked to Ana at Acme").
type LinkedPerson struct {
	Name, Org string
}

// Runner is a channel that keeps a connection of its own while the server runs (Slack's Socket
// Mode, Telegram's long polling). Run blocks until ctx is done, acting on Ony through host, and
// returns nil then; it retries its provider itself with backoff.
type Runner interface {
	Channel
	Run(ctx context.Context, host Host) error
}

// Mounted is an inbound route with its full pattern, e.g. "POST /hooks/slack/interactions".
type Mounted struct {
	Pattern string
	Handler http.Handler
	Stream  bool // Route.Stream
}

// Routes collects the inbound routes of every registered channel that receives HTTP. A provider
// name that cannot be a path segment, or a pattern that clashes with another, is an error, found
// when the server is built rather than by a request.
func (r *Registry) Routes(host Host) ([]Mounted, error) {
	var out []Mounted
	probe := http.NewServeMux()
	for _, c := range r.All() {
		rc, ok := c.(Receiver)
		if !ok {
			continue
		}
		if !providerRE.MatchString(c.Provider()) {
			return nil, fmt.Errorf("channel: provider %q cannot name a /hooks/ path", c.Provider())
		}
		for _, rt := range rc.Routes(host) {
			if strings.HasPrefix(rt.Path, "/") || rt.Handler == nil || rt.Method == "" {
				return nil, fmt.Errorf("channel: %s route %q needs a method, a handler and a path without a leading /", c.Provider(), rt.Path)
			}
			pattern := rt.Method + " /hooks/" + c.Provider()
			if rt.Path != "" {
				pattern += "/" + rt.Path
			}
			if err := register(probe, pattern); err != nil {
				return nil, fmt.Errorf("channel: %s route %q: %w", c.Provider(), pattern, err)
			}
			out = append(out, Mounted{Pattern: pattern, Handler: rt.Handler, Stream: rt.Stream})
		}
	}
	return out, nil
}

var providerRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// register adds pattern to mux, turning the mux's panic on a bad or clashing pattern into an error.
func register(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, http.NotFoundHandler())
	return nil
}
