package channel

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/store"
)

// Kind describes one kind of channel: how people are reached on it and what the engine may do with
// it. The engine, the ladder parser and people's settings ask the registered kinds; none of them
// switches on a kind's name.
type Kind struct {
	// Name is what ladders write in a step's channels and what sends record: "sms", "slack".
	Name string
	// People is whether the kind reaches people (false: only shared destinations, like webhook bridges).
	People bool
	// Contact is the contact a person is reached on ("phone" for both SMS and calls). Nil for a kind
	// that reaches people without one (the console: every member has an inbox) or reaches no people.
	Contact *ContactKind
	// Team, when set, checks a shared destination written in a ladder as "<name>:<value>"
	// (slack:#ops, webhook:teams); the error says what is wrong with value. TeamForm shows the form
	// in messages: "slack:<#channel or channel id>".
	Team     func(value string) error
	TeamForm string
	// Configured kinds have only the shared destinations their providers know (webhook bridges are
	// configured by name): a ladder put through the API may target only those (see Destinations).
	Configured bool
	// Silent kinds never disturb anyone (the console inbox), so quiet hours do not hold them back.
	Silent bool
	// Inbox kinds deliver by their send row alone (the console: the row is the inbox entry). The rung
	// writes it delivered, by the kind's first provider, and no provider is called to notify.
	Inbox bool
	// TakesDecisions is whether people decide on it (buttons, replies, keypad); each notification to a
	// person then carries a single-use decision token.
	TakesDecisions bool
	// Meter names the caps that bound the kind's cost ("sms", "calls"); empty means not metered.
	Meter string
	// Redials is whether a notification that rang out or was busy is retried per the step's redial.
	Redials bool
	// Failover is whether a ladder step may order the kind's providers (providers: {sms: [a, b]}).
	Failover bool
}

// ContactKind is one way a person can be reached: a phone number, a Slack member id. A person has at
// most one contact of each kind (a row of user_contacts).
type ContactKind struct {
	// Name is the stored kind ("phone"); Field names the setting in errors, the API and the CLI flag
	// ("phone", "slack_id" → --slack-id); Usage describes it for help text.
	Name, Field, Usage string
	// Normalize cleans an address and checks it. Its error is shown to whoever typed the address, so
	// it must not echo an address that is personal data in full (Mask it).
	Normalize func(string) (string, error)
	// Mask shows an address in logs, errors and the team view (a phone as +1•••••••4821).
	Mask func(string) string
	// Verify is whether an address counts only once verified (a phone number, by a code sent to it or
	// because an operator vouched for it).
	Verify bool
}

var kindNameRE = lazyregexp.New(`^[a-z][a-z0-9_]{0,31}$`)

// reserved are names a kind cannot take: ladder targets use group: and role:, and sends use "step"
// for their rung markers.
var reserved = []string{"group", "role", "step"}

// Kinds is the set of kinds this instance knows, in the order they were registered (the order in
// which help text lists them).
type Kinds struct {
	list     []Kind
	contacts []*ContactKind
}

// NewKinds registers kinds; names must be unique and well-formed, and kinds that share a contact
// must share the same *ContactKind.
func NewKinds(ks ...Kind) (*Kinds, error) {
	out := &Kinds{}
	var errs []error
	for _, k := range ks {
		switch {
		case !kindNameRE.MatchString(k.Name) || slices.Contains(reserved, k.Name):
			errs = append(errs, fmt.Errorf("channel: kind name %q must be a lower-case word other than %v", k.Name, reserved))
			continue
		case slices.ContainsFunc(out.list, func(h Kind) bool { return h.Name == k.Name }):
			errs = append(errs, fmt.Errorf("channel: kind %q registered twice", k.Name))
			continue
		case !k.People && k.Team == nil:
			errs = append(errs, fmt.Errorf("channel: kind %q reaches neither people nor team destinations", k.Name))
		case (k.Team == nil) != (k.TeamForm == ""):
			errs = append(errs, fmt.Errorf("channel: kind %q needs both Team and TeamForm, or neither", k.Name))
		case k.Contact != nil && !k.People:
			errs = append(errs, fmt.Errorf("channel: kind %q has a contact but reaches no people", k.Name))
		}
		if c := k.Contact; c != nil {
			if c.Normalize == nil || c.Mask == nil || c.Name == "" || c.Field == "" {
				errs = append(errs, fmt.Errorf("channel: contact %q of kind %q needs Name, Field, Normalize and Mask", c.Name, k.Name))
			}
			i := slices.IndexFunc(out.contacts, func(h *ContactKind) bool { return h.Name == c.Name || h.Field == c.Field })
			switch {
			case i < 0:
				out.contacts = append(out.contacts, c)
			case out.contacts[i] != c:
				errs = append(errs, fmt.Errorf("channel: contact %q of kind %q clashes with another contact of that name or field", c.Name, k.Name))
			}
		}
		out.list = append(out.list, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// MustKinds is NewKinds for fixed lists, which are checked by tests.
func MustKinds(ks ...Kind) *Kinds {
	k, err := NewKinds(ks...)
	if err != nil {
		panic(err)
	}
	return k
}

// With returns the kinds plus more (a test's own kind, say).
func (k *Kinds) With(more ...Kind) (*Kinds, error) {
	return NewKinds(append(slices.Clone(k.list), more...)...)
}

// Kind looks a kind up by name.
func (k *Kinds) Kind(name string) (Kind, bool) {
	for _, x := range k.list {
		if x.Name == name {
			return x, true
		}
	}
	return Kind{}, false
}

// Names lists the kinds in registration order.
func (k *Kinds) Names() []string { return k.Where(func(Kind) bool { return true }) }

// Where lists the names of the kinds for which keep is true, in registration order.
func (k *Kinds) Where(keep func(Kind) bool) []string {
	var out []string
	for _, x := range k.list {
		if keep(x) {
			out = append(out, x.Name)
		}
	}
	return out
}

// Contacts lists the contact kinds, in the order their channel kinds were registered.
func (k *Kinds) Contacts() []*ContactKind { return slices.Clone(k.contacts) }

// Contact looks a contact kind up by its stored name.
func (k *Kinds) Contact(name string) (*ContactKind, bool) {
	for _, c := range k.contacts {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// Address is where u is reached on kind k: the user id for a kind without a contact (the console),
// the contact's address otherwise — "" when u has none, or has one that still needs verifying.
func (k Kind) Address(u store.User) string {
	if !k.People {
		return ""
	}
	if k.Contact == nil {
		return u.ID
	}
	c, ok := u.Contact(k.Contact.Name)
	if !ok || (k.Contact.Verify && c.VerifiedAt == nil) {
		return ""
	}
	return c.Address
}
