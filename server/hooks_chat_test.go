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
}

func (g *hostGrabber) Kind() string     { return "slack" }
func (g *hostGrabber) Provider() string { return "grab" }
func (g *hostGrabber) Notify(context.Context, channel.Notification) (channel.Delivery, error) {
	return channel.Delivery{Ref: "x", State: store.SendSent}, nil
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

func isProblem(err error, code string) bool {
	p, ok := problem.As(err)
	return ok && p.Code == code
}
