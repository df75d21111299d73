package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
)

// TestChatEvents: a linked or unlinked chat account is recorded by kind and method only; a method
// outside the closed set cannot carry an address in, and a leaf without a method encodes as before.
func TestChatEvents(t *testing.T) {
	t.Parallel()
	base := func(typ audit.EventType, method string) audit.Event {
		e := audit.Event{V: 1, Type: typ, At: time.Unix(1, 0), Actor: audit.Actor{Kind: "user", ID: "u1", Role: "member"},
			Subject: audit.Subject{Kind: "user", ID: "u1"}, Channel: "slack"}
		if method != "" {
			e.Details = &audit.Details{Method: method}
		}
		return e
	}
	for _, e := range []audit.Event{base(audit.ContactLinked, audit.LinkMethodCode), base(audit.ContactLinked, audit.LinkMethodEmail),
		base(audit.ContactUnlinked, "")} {
		if err := e.Validate(known); err != nil {
			t.Errorf("%s %+v: %v", e.Type, e.Details, err)
		}
	}
	for _, m := range []string{"U024BE7LH", "sms", "Code", "code ", "ana@example.com", "123456789"} {
		if err := base(audit.ContactLinked, m).Validate(known); err == nil {
			t.Errorf("method %q was accepted", m)
		}
	}
	b, err := base(audit.ContactLinked, audit.LinkMethodEmail).Encode(known)
	if err != nil || !strings.HasSuffix(string(b), `"channel":"slack","details":{"method":"email"}}`) {
		t.Errorf("encoded %s, %v", b, err)
	}
	b, err = base(audit.ContactUnlinked, "").Encode(known)
	if err != nil || strings.Contains(string(b), "method") {
		t.Errorf("encoded %s, %v", b, err)
	}
}
