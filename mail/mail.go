// Package mail sends Ony's few emails — invites and password-reset links — through an SMTP relay.
// A nil Sender means no relay is configured: callers show the link to copy instead.
package mail

import "context"

// Message is one plain-text email to one address. It carries no payload and no secret but, at most,
// the one link it exists to deliver.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Sender delivers a message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}
