package audit_test

import (
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
)

// TestPayloadScrubbedEvent: the retention sweep's leaf names the organization and carries only a count
// and a window; negative numbers are refused.
func TestPayloadScrubbedEvent(t *testing.T) {
	t.Parallel()
	e := audit.Event{V: 1, Type: audit.PayloadScrubbed, At: time.Unix(1, 0).UTC(), Actor: audit.Actor{Kind: "system", ID: "retention"},
		Subject: audit.Subject{Kind: "org", ID: "0d5f3c1e-7a5b-4a53-9c43-8f1f0f7c2b1a"}, Channel: "system",
		Details: &audit.Details{Count: 2, Days: 30}}
	b, err := e.Encode(known)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"type":"payload.scrubbed","at":"1970-01-01T00:00:01Z","actor":{"kind":"system","id":"retention"},` +
		`"subject":{"kind":"org","id":"0d5f3c1e-7a5b-4a53-9c43-8f1f0f7c2b1a"},"channel":"system","details":{"count":2,"days":30}}`
	if string(b) != want {
		t.Errorf("encoded\n %s\nwant\n %s", b, want)
	}
	if back, err := audit.Decode(b); err != nil || back.Details == nil || back.Details.Count != 2 || back.Details.Days != 30 {
		t.Errorf("decode: %+v, %v", back.Details, err)
	}
	for _, d := range []audit.Details{{Count: -1, Days: 30}, {Count: 2, Days: -1}} {
		bad := e
		bad.Details = &d
		if err := bad.Validate(known); err == nil {
			t.Errorf("%+v accepted", d)
		}
	}
}
