package escalation_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Recall rebuilds, for a call's document fetched later, exactly what the call's notification said:
// the same fields from the same code, with the token's recipient, and the agent's name.
func TestRecall(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: phone
default: true
steps:
  - channels: [call, sms]
    targets: [ana@example.com]
end: wait
`}, stepUp: func(context.Context, string, string) (bool, error) { return true, nil }})
	h.person("ana", oncall("", "+15550100001"))
	ho := h.create(handoff.CreateRequest{Action: "db.migrate", Summary: "add a column"})
	h.advance(time.Second)
	var call, sms channel.Notification
	for _, s := range h.sent {
		switch s.channel {
		case "call/sim":
			call = s.n
		case "sms/sim":
			sms = s.n
		}
	}
	if call.Token == "" || sms.Token == "" {
		t.Fatalf("no call or text with a token: %v", h.log())
	}
	if call.Agent != "agent" || !call.StepUp || len(call.Options) != 2 {
		t.Fatalf("the call's notification: agent %q, step-up %v, options %v", call.Agent, call.StepUp, call.Options)
	}

	got, err := h.eng.Recall(ctx, call.Token, "call")
	if err != nil {
		t.Fatal(err)
	}
	want := call
	// Where in the ladder the token was sent is not kept with it.
	want.Key, want.Climb, want.Step, want.StepName, want.Attempt = "", 0, 0, "", 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Recall:\n got %+v\nwant %+v", got, want)
	}
	if got.Recipient.Address != "+15550100001" || got.Token != call.Token || got.Ladder != "phone" {
		t.Fatalf("Recall recipient %q, ladder %q", got.Recipient.Address, got.Ladder)
	}

	for _, c := range []struct {
		name, token, kind, code string
	}{
		{"a text's token on a call", sms.Token, "call", "invalid_decision_token"},
		{"a call's token on another kind", call.Token, "sms", "invalid_decision_token"},
		{"an unknown kind", call.Token, "fax", "invalid_decision_token"},
		{"an unknown token", "ony_dt_" + strings.Repeat("A", 43), "call", "invalid_decision_token"},
		{"not a token", "garbage", "call", "invalid_decision_token"},
		{"empty", "", "call", "invalid_decision_token"},
	} {
		if _, err := h.eng.Recall(ctx, c.token, c.kind); code(err) != c.code {
			t.Errorf("%s: %v; want %s", c.name, err, c.code)
		}
	}

	// Once the handoff is decided (here by the text), the call hears who decided.
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: sms.Token, Option: "deny", Channel: "sms"}); err != nil {
		t.Fatal(err)
	}
	_, err = h.eng.Recall(ctx, call.Token, "call")
	if p, ok := problem.As(err); !ok || p.Code != "already_final" || !strings.Contains(p.Message, "denied by ana via sms") {
		t.Fatalf("Recall after the decision: %v", err)
	}
	if st := h.get(ho.ID).Status; st != store.StatusDenied {
		t.Fatalf("status %s", st)
	}
}

// A call whose handoff expired meanwhile recalls nothing: the handoff is final (already_final) or,
// before the expiry job ran, the token is past its expiry (invalid_decision_token).
func TestRecallExpired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: phone
default: true
steps:
  - channels: [call]
    targets: [ana@example.com]
end: wait
`}})
	h.person("ana", oncall("", "+15550100001"))
	h.create(handoff.CreateRequest{Action: "deploy", Timeout: 10 * time.Minute})
	h.advance(time.Second)
	if len(h.sent) != 1 || h.sent[0].n.Token == "" {
		t.Fatalf("sent %v", h.log())
	}
	tok := h.sent[0].n.Token
	if _, err := h.eng.Recall(ctx, tok, "call"); err != nil {
		t.Fatal(err)
	}
	h.advance(11 * time.Minute)
	_, err := h.eng.Recall(ctx, tok, "call")
	if c := code(err); c != "already_final" && c != "invalid_decision_token" {
		t.Fatalf("Recall after expiry: %v", err)
	}
}
