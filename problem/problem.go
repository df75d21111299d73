// Package problem is the typed error every layer returns when a caller did something wrong: a kind
// the HTTP layer maps to a status, a stable machine code, and a message safe to show the caller.
package problem

import (
	"errors"
	"fmt"
	"time"
)

// Kind decides the HTTP status.
type Kind int

const (
	Invalid      Kind = iota + 1 // 400
	Unauthorized                 // 401
	Forbidden                    // 403
	NotFound                     // 404
	Conflict                     // 409
	TooLarge                     // 413
	RateLimited                  // 429
	Unavailable                  // 503
)

// Status is the HTTP status of a kind; 500 for one this list does not know.
func (k Kind) Status() int {
	switch k {
	case Invalid:
		return 400
	case Unauthorized:
		return 401
	case Forbidden:
		return 403
	case NotFound:
		return 404
	case Conflict:
		return 409
	case TooLarge:
		return 413
	case RateLimited:
		return 429
	case Unavailable:
		return 503
	}
	return 500
}

// Error is a caller-facing error. Message must never carry payloads, secrets or internal errors.
type Error struct {
	Kind    Kind
	Code    string // stable, snake_case
	Message string
	// Details is extra machine-readable context (e.g. who already decided), JSON-encodable.
	Details any
	// RetryAfter is set for RateLimited.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns a problem of kind with a code and a formatted message.
func New(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// As extracts a problem from err's chain.
func As(err error) (*Error, bool) {
	var p *Error
	ok := errors.As(err, &p)
	return p, ok
}
