package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
)

// TestContactVerifiedEvent: a verified phone is recorded by channel and method only; the leaf has no
// room for the number, and a method outside the closed set (a number smuggled in) is refused.
func TestContactVerifiedEvent(t *testing.T) {
	t.Parallel()
	e := audit.Event{V: 1, Type: audit.ContactVerified, At: time.Unix(1, 0), Actor: audit.Actor{Kind: "user", ID: "u1", Role: "member"},
		Subject: audit.Subject{Kind: "user", ID: "u1"}, Channel: "sms", Details: &audit.Details{Method: audit.LinkMethodCode}}
	b, err := e.Encode(known)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"type":"contact.verified"`) || !strings.HasSuffix(string(b), `"channel":"sms","details":{"method":"code"}}`) {
		t.Errorf("encoded %s", b)
	}
	bad := e
	bad.Details = &audit.Details{Method: "+14155550123"}
	if err := bad.Validate(known); err == nil {
		t.Error("a phone number was accepted as the method")
	}
	bad = e
	bad.Type = "contact.verify"
	if err := bad.Validate(known); err == nil {
		t.Error("an undeclared type was accepted")
	}
}
