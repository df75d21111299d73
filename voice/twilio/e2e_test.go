package twilio_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

// A handoff climbs to SMS and a call through the real engine: the text carries the code and no
// token, the call's document URL carries the token, a forged status changes nothing, and signed
// status callbacks reach the sends as delivered and answered.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			testEndToEnd(t, d)
		})
	}
}

func testEndToEnd(t *testing.T, dialect string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fake := twiliotest.New(t, accountSID, authToken)
	p, err := twilio.New(twilio.Config{AccountSID: accountSID, AuthToken: authToken, From: ourNumber, PublicURL: public,
		APIURL: fake.URL(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ladders := t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "phone.yaml"), []byte(`
name: phone
default: true
steps:
  - channels: [sms, call, console]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := testserver.Start(t, testserver.Options{Dialect: dialect, Channels: []channel.Channel{p.SMS(), p.Call()},
		Configure: func(c *config.Config) { c.Escalation.LaddersDir = ladders }}).Seed(t)
	people := org.Service{Store: in.App.Store, Audit: in.App.Audit, Kinds: in.App.Escalation.Kinds()}
	phone := callee
	if _, err := people.UpdateContact(ctx, audit.Actor{Kind: "system", ID: "test"}, in.OrgID, in.Admin.Email,
		org.Contact{Addresses: map[string]*string{"phone": &phone}}); err != nil {
		t.Fatal(err)
	}
	agent := in.Agent(t)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy", Title: "Deploy api v2", Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := fake.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	calls, err := fake.WaitCalls(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, c := msgs[0], calls[0]
	if m.To != callee || !strings.HasPrefix(m.Body, "ony: [") || !strings.Contains(m.Body, "deploy") || !strings.Contains(m.Body, " to approve, N ") {
		t.Fatalf("text %+v", m)
	}
	if c.To != callee || !strings.HasPrefix(c.URL, public+"/hooks/twilio/call?t=") || strings.Contains(m.Body, c.URL[len(public+"/hooks/twilio/call?t="):]) {
		t.Fatalf("call %+v", c)
	}

	drv := &twiliotest.Driver{Key: authToken, Public: public, Target: in.URL, AccountSID: accountSID}
	if res := drv.SMSStatus(t, m, "delivered", twiliotest.SignWith("forged")); res.Status != 403 {
		t.Fatalf("forged status: %d", res.Status)
	}
	if res := drv.CallStatus(t, c, "in-progress", "human", twiliotest.NoSignature()); res.Status != 403 {
		t.Fatalf("unsigned status: %d", res.Status)
	}
	// The engine records each send once Notify returns, a moment after the fake saw the request.
	waitStates(ctx, t, in, h.ID, store.SendSent, store.SendSent)
	if res := drv.SMSStatus(t, m, "delivered"); res.Status != 204 {
		t.Fatalf("status: %d", res.Status)
	}
	if res := drv.CallStatus(t, c, "in-progress", "human"); res.Status != 204 {
		t.Fatalf("status: %d", res.Status)
	}
	if got := states(ctx, t, in, h.ID); got["sms"] != store.SendDelivered || got["call"] != store.SendAnswered {
		t.Fatalf("after callbacks: %v", got)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != "pending" {
		t.Fatalf("status callbacks decided: %+v %v", got, err)
	}
}

// waitStates waits until the sms and call sends are in the given states; it fails if they settle elsewhere.
func waitStates(ctx context.Context, t *testing.T, in *testserver.Instance, handoffID string, sms, call store.SendState) {
	t.Helper()
	for {
		got := states(ctx, t, in, handoffID)
		if got["sms"] == sms && got["call"] == call {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sends %v, waited for sms %s and call %s", got, sms, call)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// states is each channel's send state for the handoff.
func states(ctx context.Context, t *testing.T, in *testserver.Instance, handoffID string) map[string]store.SendState {
	t.Helper()
	out := map[string]store.SendState{}
	if err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		all, err := tx.ListSends(ctx, handoffID)
		for _, s := range all {
			out[s.Channel] = s.State
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
