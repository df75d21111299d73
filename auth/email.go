package auth

import (
	"net/mail"
	"strings"

	"github.com/ony-ai/ony/problem"
)

// NormalizeEmail lower-cases and checks an address. It lives here, with the other credential rules,
// because an email is what a person signs in with: provisioning (org) and login must agree on it.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return "", problem.New(problem.Invalid, "invalid_email", "%q is not an email address", s)
	}
	return s, nil
}
