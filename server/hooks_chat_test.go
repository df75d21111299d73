package server_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// hostGrabber is a Slack provider that only keeps the Host the server gives inbound routes.
type hostGrabber struct {
	mu   sync.Mutex
	host channel.Host
	sent []channel.Notification
}

func (g *hostGrabber) Kind() string     { return "slack" }
func (g *hostGrabber) Provider() string { return "grab" }
func (g *hostGrabber) Notify(_ context.Context, n channel.Notification) (channel.Delivery, error) {
	g.mu.Lock()
	g.sent = append(g.sent, n)
	g.mu.Unlock()
	return channel.Delivery{Ref: "x", State: store.SendSent}, nil
}

// waitSent waits for the notification of handoff id.
func (g *hostGrabber) waitSent(t *testing.T, id string) channel.Notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		g.mu.Lock()
		for _, n := range g.sent {
			if n.HandoffID == id {
				g.mu.Unlock()
				return n
			}
		}
		g.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no notification of %s", id)
	return channel.Notification{}
}
func (g *hostGrabber) Update(context.Context, channel.Update) error { return nil }
func (g *hostGrabber) Routes(h channel.Host) []channel.Route {
	g.mu.Lock()
	g.host = h
	g.mu.Unlock()
	return []channel.Route{{Method: "POST", Path: "x", Handler: http.NotFoundHandler()}}
}

func (g *hostGrabber) get(t *testing.T) channel.Host {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.host == nil {
		t.Fatal("the server gave no host")
	}
	return g.host
}

// TestHookHostDecideAndLink: the host chat routes act through reads the answerer on the kind's
// contact (a team post decides as the linked member, nobody else's tap counts), and links a chat
// account with a code made in the console.
func TestHookHostDecideAndLink(t *testing.T) {
	t.Parallel()
	g := &hostGrabber{}
	in := testserver.Start(t, testserver.Options{Channels: []channel.Channel{g}}).Seed(t)
	ctx := context.Background()
	host := g.get(t)

	// Link the member's Slack account with a code, as /ony link does.
	code, _, err := in.App.Team.LinkCode(ctx, audit.Actor{Kind: "user", ID: in.Member.ID, Role: "member"}, in.OrgID, "slack")
	if err != nil {
		t.Fatal(err)
	}
	who, err := host.Link(ctx, code, "slack", "U0MIA")
	if err != nil || who != (channel.LinkedPerson{Name: "Mia Member", Org: "Acme"}) {
		t.Fatalf("Link = %+v, %v", who, err)
	}
	if _, err := host.Link(ctx, code, "slack", "U0MIA"); !isProblem(err, "invalid_link_code") {
		t.Fatalf("second use: %v", err)
	}

	// A team token for a new handoff, as the engine mints for slack:#ops.
	h := mustCreate(t, in.Agent(t), basicRequest("deploy"))
	tok, err := auth.NewToken(auth.DecisionTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		return tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, Target: "slack:#ops", Channel: "slack",
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Decide(ctx, channel.Answer{Token: tok.Plain, Option: "deny", Channel: "slack", From: "U0NOBODY"}); !isProblem(err, "not_linked") {
		t.Fatalf("an unlinked account: %v", err)
	}
	got, err := host.Decide(ctx, channel.Answer{Token: tok.Plain, Index: 2, Channel: "slack", From: "U0MIA"})
	if err != nil || got.Status != store.StatusDenied || got.Decision.ByID != in.Member.ID || got.Decision.Channel != "slack" {
		t.Fatalf("the linked member: %+v %v", got.Decision, err)
	}
}

// TestTeamPostStepUp: as the app wires it, a post to a team destination carries a token of its own
// and says when approving needs the console (the org's step-up policy for the handoff's risk); a tap
// on its approve button is refused with stepup_required, its deny decides.
func TestTeamPostStepUp(t *testing.T) {
	t.Parallel()
	g := &hostGrabber{}
	in := testserver.Start(t, testserver.Options{Channels: []channel.Channel{g}, StepUp: true}).Seed(t)
	ctx := context.Background()
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	putLadder(admin, "chat", "name: chat\ndefault: true\nsteps:\n  - channels: [slack]\n    targets: [\"slack:#ops\"]\nend: wait\n").
		ladder(t, http.StatusOK)
	if err := in.App.Team.LinkByLookup(ctx, audit.Actor{Kind: "user", ID: in.Member.ID, Role: "member"}, in.OrgID, "slack", "U0MIA"); err != nil {
		t.Fatal(err)
	}
	agent := bearer(t, in.URL, in.DeviceToken)
	risky := agent.do("POST", "/v1/handoffs", map[string]any{
		"action": "shell.exec", "title": "Wipe", "payload": map[string]any{"kind": "command", "content": "rm -rf /srv/data"},
		"labels": map[string]string{"env": "prod"}}).handoff(t, http.StatusCreated)
	calm := agent.do("POST", "/v1/handoffs", map[string]any{"action": "docs.read", "title": "Read"}).handoff(t, http.StatusCreated)
	if risky.Risk != "high" && risky.Risk != "critical" || calm.Risk == "high" || calm.Risk == "critical" {
		t.Fatalf("risks %s and %s", risky.Risk, calm.Risk)
	}
	n := g.waitSent(t, risky.ID)
	if !n.StepUp || n.Token == "" || n.Recipient.UserID != "" {
		t.Fatalf("risky team post: step-up %v, token %t, recipient %q", n.StepUp, n.Token != "", n.Recipient.UserID)
	}
	if m := g.waitSent(t, calm.ID); m.StepUp || m.Token == "" {
		t.Fatalf("calm team post: step-up %v, token %t", m.StepUp, m.Token != "")
	}
	host := g.get(t)
	if _, err := host.Decide(ctx, channel.Answer{Token: n.Token, Option: "approve", Channel: "slack", From: "U0MIA"}); !isProblem(err, "stepup_required") {
		t.Fatalf("approve from chat: %v", err)
	}
	got, err := host.Decide(ctx, channel.Answer{Token: n.Token, Option: "deny", Channel: "slack", From: "U0MIA"})
	if err != nil || got.Status != store.StatusDenied || got.Decision.ByID != in.Member.ID {
		t.Fatalf("deny from chat: %+v %v", got.Decision, err)
	}
}

func isProblem(err error, code string) bool {
	p, ok := problem.As(err)
	return ok && p.Code == code
}
