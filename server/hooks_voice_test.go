package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestHookHostSMSAndRecall (issue 15): through the host the server gives inbound routes, an SMS
// reply's short code and choice decide as the person the text went to, and a call's token recalls
// what the call is about, with the agent's name and the callee.
func TestHookHostSMSAndRecall(t *testing.T) {
	t.Parallel()
	g := &hostGrabber{}
	in := testserver.Start(t, testserver.Options{Channels: []channel.Channel{g}}).Seed(t)
	ctx := context.Background()
	host := g.get(t)
	const phone = "+15550100001"
	now := time.Now().UTC()
	if err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		return tx.SetContact(ctx, store.Contact{UserID: in.Member.ID, Kind: "phone", Address: phone, VerifiedAt: &now, CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	mint := func(handoffID, kind string) auth.Token {
		t.Helper()
		tok, err := auth.NewToken(auth.DecisionTokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
			return tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: handoffID, UserID: in.Member.ID, Channel: kind,
				CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
		}); err != nil {
			t.Fatal(err)
		}
		return tok
	}

	called := mustCreate(t, in.Agent(t), basicRequest("deploy"))
	call := mint(called.ID, "call")
	n, err := host.Recall(ctx, call.Plain, "call")
	if err != nil {
		t.Fatal(err)
	}
	if n.HandoffID != called.ID || n.Action != called.Action || n.Agent != "test agent" || n.Recipient.Address != phone ||
		n.Recipient.UserID != in.Member.ID || n.Token != call.Plain || len(n.Options) == 0 {
		t.Fatalf("Recall = %+v", n)
	}
	if _, err := host.Recall(ctx, call.Plain, "sms"); !isProblem(err, "invalid_decision_token") {
		t.Fatalf("a call's token recalled on sms: %v", err)
	}

	texted := mustCreate(t, in.Agent(t), basicRequest("deploy"))
	sms := mint(texted.ID, "sms")
	code := channel.ShortCode(sms.Hash)
	if _, err := host.Decide(ctx, channel.Answer{Code: code, Choice: channel.ChoiceDeny, Channel: "sms", From: "+15550100002"}); !isProblem(err, "invalid_code") {
		t.Fatalf("another number: %v", err)
	}
	got, err := host.Decide(ctx, channel.Answer{Code: code, Choice: channel.ChoiceDeny, Channel: "sms", From: phone})
	if err != nil || got.ID != texted.ID || got.Status != store.StatusDenied || got.Decision.ByID != in.Member.ID || got.Decision.Channel != "sms" {
		t.Fatalf("the reply: %+v %v", got.Decision, err)
	}
}
