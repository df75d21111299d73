package channel

import (
	"context"
	"fmt"

	"github.com/ony-ai/ony/store"
)

// ConsoleKind is the console inbox: every admin and member has one, so it needs no contact, and
// nothing rings, so quiet hours do not hold it back. People decide there with their session.
var ConsoleKind = Kind{Name: "console", People: true, Silent: true, Inbox: true}

// Console puts the handoff in the person's console inbox. The send row is the inbox entry, so there
// is nothing to deliver: an Inbox kind's rung writes the row delivered and does not call Notify.
type Console struct{}

func (Console) Kind() string     { return ConsoleKind.Name }
func (Console) Provider() string { return "builtin" }

// Notify implements Channel.
func (Console) Notify(context.Context, Notification) (Delivery, error) {
	return Delivery{State: store.SendDelivered}, nil
}

// Update implements Channel; the inbox reads the handoff's state itself.
func (Console) Update(context.Context, Update) error { return nil }

// QuoteShort shows a short value in a message and only describes a long one, so that a message about
// a mistyped setting cannot carry a whole pasted document.
func QuoteShort(s string, limit int) string {
	if len(s) > limit {
		return fmt.Sprintf("(a value of %d bytes)", len(s))
	}
	return fmt.Sprintf("%q", s)
}
