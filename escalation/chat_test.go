package escalation_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/store"
)

// A team destination on a kind that takes decisions gets a token of its own, bound to the
// destination and no person: whoever taps decides as the member their chat account is linked to,
// once. A person's token refuses a tap from another account.
func TestTeamDestinationToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: chat
default: true
steps:
  - channels: [slack, console]
    targets: ["slack:#ops", ana@example.com]
end: wait
`}})
	ana := h.person("ana", oncall("U1", ""))
	h.person("bo", oncall("U2", ""))
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Second)
	var team, personal string
	for _, s := range h.sent {
		switch {
		case s.channel == "slack/sim" && s.n.Recipient.UserID == "":
			team = s.n.Token
			if s.n.Recipient.Address != "#ops" {
				t.Errorf("team post went to %q", s.n.Recipient.Address)
			}
		case s.channel == "slack/sim":
			personal = s.n.Token
		case s.n.Token != "":
			t.Errorf("%s got a token", s.channel)
		}
	}
	if !strings.HasPrefix(team, "ony_dt_") || !strings.HasPrefix(personal, "ony_dt_") || team == personal {
		t.Fatalf("tokens: team %q, person %q", team, personal)
	}
	slack := func(tok, from string) handoff.Answer {
		return handoff.Answer{Token: tok, Option: "deny", Channel: "slack", From: from, Contact: "slack"}
	}
	if _, err := h.svc.DecideAnswer(ctx, slack(personal, "U2")); code(err) != "not_recipient" {
		t.Fatalf("bo tapping ana's message: %v", err)
	}
	if _, err := h.svc.DecideAnswer(ctx, slack(team, "U9")); code(err) != "not_linked" {
		t.Fatalf("an unlinked account tapping the team post: %v", err)
	}
	got, err := h.svc.DecideAnswer(ctx, slack(team, "U1"))
	if err != nil || got.Status != store.StatusDenied || got.Decision.ByID != ana.ID || got.Decision.Channel != "slack" {
		t.Fatalf("ana tapping the team post: %+v %v", got.Decision, err)
	}
	if _, err := h.svc.DecideAnswer(ctx, slack(team, "U2")); code(err) != "already_final" {
		t.Fatalf("bo tapping after ana: %v", err)
	}
	if got := h.get(ho.ID); got.Status != store.StatusDenied {
		t.Fatalf("status %s", got.Status)
	}
}

// Notifications say when approving needs a second factor, per the org's policy for the handoff's
// risk; without a policy they never do, and a policy that cannot be read errs on the console's side.
func TestNotificationStepUp(t *testing.T) {
	t.Parallel()
	ladder := `
name: chat
default: true
steps:
  - channels: [slack]
    targets: [ana@example.com]
end: wait
`
	for _, c := range []struct {
		name   string
		policy func(h **harness) func(ctx context.Context, orgID, risk string) (bool, error)
		want   bool
	}{
		{"no policy", nil, false},
		{"required", func(h **harness) func(context.Context, string, string) (bool, error) {
			return func(_ context.Context, orgID, risk string) (bool, error) {
				return orgID == (*h).orgID && risk != "", nil
			}
		}, true},
		{"not required", func(**harness) func(context.Context, string, string) (bool, error) {
			return func(context.Context, string, string) (bool, error) { return false, nil }
		}, false},
		{"policy unreadable", func(**harness) func(context.Context, string, string) (bool, error) {
			return func(context.Context, string, string) (bool, error) { return false, errors.New("database down") }
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var h *harness
			var mu sync.Mutex
			o := harnessOpts{ladders: []string{ladder}}
			if c.policy != nil {
				p := c.policy(&h)
				o.stepUp = func(ctx context.Context, orgID, risk string) (bool, error) {
					mu.Lock()
					defer mu.Unlock()
					return p(ctx, orgID, risk)
				}
			}
			mu.Lock()
			h = newHarness(t, o)
			mu.Unlock()
			h.person("ana", oncall("U1", ""))
			h.create(handoff.CreateRequest{Action: "deploy"})
			h.advance(time.Second)
			if len(h.sent) != 1 {
				t.Fatalf("%d notifications", len(h.sent))
			}
			if n := h.sent[0].n; n.StepUp != c.want || n.Token == "" {
				t.Fatalf("StepUp = %v (token %t); want %v", n.StepUp, n.Token != "", c.want)
			}
		})
	}
}

// A notification that offers no decision (a webhook bridge's, without a token) does not read the
// step-up policy: only one that offers approval is shaped by it.
func TestNotificationStepUpOnlyWithToken(t *testing.T) {
	t.Parallel()
	ladder := `
name: mixed
default: true
steps:
  - channels: [slack, webhook]
    targets: [ana@example.com, webhook:bridge]
end: wait
`
	var mu sync.Mutex
	asked := 0
	h := newHarness(t, harnessOpts{ladders: []string{ladder}, stepUp: func(context.Context, string, string) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return true, nil
	}})
	h.person("ana", oncall("U1", ""))
	h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Second)
	if len(h.sent) != 2 {
		t.Fatalf("%d notifications; want 2", len(h.sent))
	}
	for _, s := range h.sent {
		if want := s.n.Token != ""; s.n.StepUp != want {
			t.Errorf("%s: StepUp = %v with token %t", s.channel, s.n.StepUp, s.n.Token != "")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked != 1 {
		t.Errorf("the step-up policy was read %d times; want once, for the notification with a token", asked)
	}
}
