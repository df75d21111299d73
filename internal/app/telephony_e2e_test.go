package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/browsertest"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

const (
	twSID, twToken, twFrom = "AC0123456789abcdef0123456789abcdef", "e2e-twilio-token", "+15005550006"
	txKey, txFrom          = "KEYe2e", "+15005550007"
	memberPhone            = "+14155550142"
	adminPhone             = "+14155550199"
	strangerPhone          = "+14155550100"
	phonePublic            = "https://ony.test"
)

// The ladders: a chat-then-text one for low-risk "acme.sms*" actions (SMS fails over from Twilio to
// Telnyx), and a call-first one for everything else, redialled once, then a text to the admin.
const phoneLadders = `name: text
order: 1
match: {actions: ["acme.sms*"]}
steps:
  - name: chat
    channels: [slack]
    targets: [role:member]
    wait: 1s
  - name: text
    channels: [sms]
    targets: [role:member]
    providers: {sms: [twilio, telnyx]}
    wait: 1h
end: wait
---
name: call
default: true
steps:
  - name: call
    channels: [call]
    targets: [role:member]
    providers: {call: [twilio]}
    redial: {times: 1, gap: 10s}
    wait: 40s
  - name: after
    channels: [sms]
    targets: [role:admin]
    providers: {sms: [twilio]}
    wait: 1h
end: wait
`

type phoneEnv struct {
	in  *testserver.Instance
	tw  *twiliotest.Server
	tx  *telnyxtest.Server
	sl  *slacktest.Server
	twd *twiliotest.Driver
	txd *telnyxtest.Driver
}

func startPhones(t *testing.T) *phoneEnv {
	t.Helper()
	e := &phoneEnv{tw: twiliotest.New(t, twSID, twToken), tx: telnyxtest.New(t, txKey), sl: slacktest.New(t, e2eSlackToken),
		txd: telnyxtest.NewDriver(t)}
	dir := t.TempDir()
	for i, l := range strings.Split(phoneLadders, "---\n") {
		if err := os.WriteFile(filepath.Join(dir, []string{"text.yaml", "call.yaml"}[i]), []byte(l), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.in = testserver.Start(t, testserver.Options{Dialect: "postgres", StepUp: true, Configure: func(c *config.Config) {
		c.PublicURL = phonePublic // providers reach it; the test posts to the listener as they would
		c.Escalation.LaddersDir = dir
		c.Slack = config.Slack{BotToken: e2eSlackToken, SigningSecret: e2eSlackSecret, APIURL: e.sl.URL()}
		c.Twilio = config.Twilio{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIURL: e.tw.URL()}
		c.Telnyx = config.Telnyx{APIKey: config.Secret(txKey), PublicKey: e.txd.PublicKey, ConnectionID: "conn-e2e", From: txFrom, APIURL: e.tx.URL()}
	}}).Seed(t)
	e.twd = &twiliotest.Driver{Key: twToken, Public: phonePublic, Target: e.in.URL, AccountSID: twSID}
	e.link(t, e.in.Member.Email, "slack", "UMEMBER1")
	e.link(t, e.in.Member.Email, "phone", memberPhone)
	e.link(t, e.in.Admin.Email, "phone", adminPhone)
	return e
}

func (e *phoneEnv) link(t *testing.T, email, kind, address string) {
	t.Helper()
	(&chatEnv{in: e.in}).link(t, e.in.OrgID, email, kind, address)
}

func (e *phoneEnv) status(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	h, err := e.in.Agent(t).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return h.Status
}

// TestTelephonyEndToEnd (issue 15) on PostgreSQL, with Slack, Twilio and Telnyx configured:
//   - chat goes unanswered, the text step's first provider (Twilio) is down so Telnyx texts; a reply
//     from another number and a forged one decide nothing; "Y <code>" from the member approves;
//   - a high-risk handoff calls the member: 1, then three wrong TOTP codes end the call with nothing
//     decided and an audited step-up failure;
//   - another: 1 and the right TOTP code approve, via call;
//   - a call nobody answers is redialled, and when that rings out too the next rung texts the admin.
func TestTelephonyEndToEnd(t *testing.T) {
	t.Parallel()
	e := startPhones(t)
	in := e.in
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	agent := in.Agent(t)

	// 1. SMS with failover.
	e.tw.Fail(1, 503)
	h1, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.sms", Title: "Rotate the widgets"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.sl.WaitPosted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	texts := waitFor(ctx, t, "a Telnyx text", func() []telnyxtest.Message { return e.tx.Messages() }, 1)
	m := texts[0]
	if m.To != memberPhone || !strings.Contains(m.Text, "Reply Y ") || strings.Contains(m.Text, "ony_dt_") {
		t.Fatalf("text %+v", m)
	}
	code := m.Text[strings.Index(m.Text, "Reply Y ")+8:][:4]
	hook := in.URL + "/hooks/telnyx/sms"
	if st := e.txd.Post(t, hook, e.txd.MessageReceived("in-1", strangerPhone, txFrom, "Y "+code), telnyxtest.Good); st != 200 {
		t.Fatalf("stranger's reply: %d", st)
	}
	if st := e.txd.Post(t, hook, e.txd.MessageReceived("in-2", memberPhone, txFrom, "Y "+code), telnyxtest.WrongKey); st/100 != 4 {
		t.Fatalf("forged reply: %d", st)
	}
	if s := e.status(ctx, t, h1.ID); s != client.StatusPending {
		t.Fatalf("after a stranger's and a forged reply: %s", s)
	}
	if st := e.txd.Post(t, hook, e.txd.MessageReceived("in-3", memberPhone, txFrom, "y "+code), telnyxtest.Good); st != 200 {
		t.Fatalf("reply: %d", st)
	}
	if got, err := agent.Wait(ctx, h1.ID); err != nil || got.Status != client.StatusApproved || got.Decision.Channel != "sms" {
		t.Fatalf("after the reply: %+v %v", got, err)
	}

	// The member has TOTP; the authenticator gives fresh codes.
	enr, err := in.App.TOTP.Begin(ctx, in.OrgID, in.Member.ID, in.Member.Email)
	if err != nil {
		t.Fatal(err)
	}
	app := &browsertest.Authenticator{Secret: enr.Secret}
	if err := in.App.TOTP.Confirm(ctx, in.OrgID, in.Member.ID, app.Code(t)); err != nil {
		t.Fatal(err)
	}

	// 2. A call: 1, then three wrong codes.
	high := client.CreateRequest{Action: "deploy.apply", Title: "Ship shop 1.42", Labels: map[string]string{"env": "prod"}}
	h2, _, err := agent.Create(ctx, high, "")
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(ctx, t, "a call", e.tw.Calls, 1)[0]
	if c.To != memberPhone || c.MachineDetection != "Enable" || strings.Contains(c.URL, h2.ID) {
		t.Fatalf("call %+v", c)
	}
	doc := e.twd.Answer(t, c, "human")
	if doc.Status != 200 || doc.TwiML.Gather == nil || !strings.Contains(strings.Join(doc.TwiML.Gather.Says, " "), "Press 1 to approve") {
		t.Fatalf("call document %d %+v", doc.Status, doc.TwiML)
	}
	r := e.twd.Press(t, c, doc.TwiML.Gather, "1")
	for i := range 3 {
		if r.TwiML.Gather == nil || r.TwiML.Gather.NumDigits != 6 {
			t.Fatalf("wrong code %d: no 6-digit gather: %+v", i, r.TwiML)
		}
		r = e.twd.Press(t, c, r.TwiML.Gather, "000000")
	}
	if !r.TwiML.Hangup || r.TwiML.Gather != nil {
		t.Fatalf("after three wrong codes: %+v", r.TwiML)
	}
	if s := e.status(ctx, t, h2.ID); s != client.StatusPending {
		t.Fatalf("wrong codes decided: %s", s)
	}
	if n := countLeaves(ctx, t, in, `"stepup.failed"`); n < 3 {
		t.Errorf("%d audited step-up failures, want 3", n)
	}
	if s := lastSend(ctx, t, in, h2.ID, "call"); s.State != store.SendAnswered || s.Detail != "stepup_failed" || s.Ref != c.SID {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
	if _, err := agent.Cancel(ctx, h2.ID, "test moves on"); err != nil {
		t.Fatal(err)
	}

	// 3. A call: 1 and the right code approve, via call.
	h3, _, err := agent.Create(ctx, high, "")
	if err != nil {
		t.Fatal(err)
	}
	c = waitFor(ctx, t, "a second call", e.tw.Calls, 2)[1]
	doc = e.twd.Answer(t, c, "human")
	r = e.twd.Press(t, c, doc.TwiML.Gather, "1")
	r = e.twd.Press(t, c, r.TwiML.Gather, app.Code(t))
	if !r.TwiML.Hangup || !strings.Contains(strings.Join(r.TwiML.Says, " "), "Approved") {
		t.Fatalf("after the right code: %+v", r.TwiML)
	}
	if got, err := agent.Wait(ctx, h3.ID); err != nil || got.Status != client.StatusApproved || got.Decision.Channel != "call" {
		t.Fatalf("after the keypad: %+v %v", got, err)
	}
	if s := lastSend(ctx, t, in, h3.ID, "call"); s.State != store.SendAnswered || s.Detail != "approved" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}

	// 4. Nobody answers: redial after the gap, then the next rung texts the admin.
	h4, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.nightly", Title: "Nightly job"}, "")
	if err != nil {
		t.Fatal(err)
	}
	c = waitFor(ctx, t, "a third call", e.tw.Calls, 3)[2]
	waitSend(ctx, t, in, h4.ID, "call", store.SendSent)
	if res := e.twd.CallStatus(t, c, "no-answer", ""); res.Status/100 != 2 {
		t.Fatalf("no-answer status: %d", res.Status)
	}
	c = waitFor(ctx, t, "the redial", e.tw.Calls, 4)[3]
	if c.To != memberPhone {
		t.Fatalf("redial to %s", c.To)
	}
	waitSend(ctx, t, in, h4.ID, "call", store.SendSent)
	if res := e.twd.CallStatus(t, c, "busy", ""); res.Status/100 != 2 {
		t.Fatalf("busy status: %d", res.Status)
	}
	msgs := waitFor(ctx, t, "the next rung's text", e.tw.Messages, 1)
	if msgs[0].To != adminPhone || !strings.Contains(msgs[0].Body, "acme.nightly") {
		t.Fatalf("next rung %+v", msgs[0])
	}
	if s := e.status(ctx, t, h4.ID); s != client.StatusPending {
		t.Fatalf("h4 is %s", s)
	}
}

// waitFor polls list until it holds n items.
func waitFor[T any](ctx context.Context, t *testing.T, what string, list func() []T, n int) []T {
	t.Helper()
	for {
		if got := list(); len(got) >= n {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waited for %s: %d of %d", what, len(list()), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lastSend is the newest send of channel for the handoff.
func lastSend(ctx context.Context, t *testing.T, in *testserver.Instance, handoffID, channel string) store.Send {
	t.Helper()
	var sends []store.Send
	err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) (err error) {
		sends, err = tx.ListSends(ctx, handoffID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var last store.Send
	for _, s := range sends {
		if s.Channel == channel {
			last = s
		}
	}
	return last
}

// waitSend waits until the newest send of channel for the handoff is in state (recorded after the
// provider accepted it, a moment after the fake saw the request).
func waitSend(ctx context.Context, t *testing.T, in *testserver.Instance, handoffID, channel string, state store.SendState) {
	t.Helper()
	for {
		if lastSend(ctx, t, in, handoffID, channel).State == state {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the %s send of %s never reached %s", channel, handoffID, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func countLeaves(ctx context.Context, t *testing.T, in *testserver.Instance, needle string) int {
	t.Helper()
	n := 0
	if _, err := in.App.Audit.Sequence(ctx, in.App.Store, in.OrgID); err != nil {
		t.Fatal(err)
	}
	err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 10000)
		for _, l := range ls {
			if strings.Contains(string(l.Data), needle) {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPhoneVerificationWiring (issue 15): with a telephony provider configured, the team service
// texts a verification code through it, and the code verifies the number.
func TestPhoneVerificationWiring(t *testing.T) {
	t.Parallel()
	tw := twiliotest.New(t, twSID, twToken)
	in := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.Twilio = config.Twilio{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIURL: tw.URL()}
	}}).Seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	team, me := in.App.Team, audit.Actor{Kind: "user", ID: in.Member.ID}
	phone := memberPhone
	if _, err := team.UpdateOwnContact(ctx, in.OrgID, in.Member.ID, org.Contact{Addresses: map[string]*string{"phone": &phone}}); err != nil {
		t.Fatal(err)
	}
	if err := team.StartPhoneVerification(ctx, me, in.OrgID, in.Member.ID); err != nil {
		t.Fatal(err)
	}
	m := waitFor(ctx, t, "the code's text", tw.Messages, 1)[0]
	i := strings.Index(m.Body, "code is ")
	if m.To != memberPhone || i < 0 {
		t.Fatalf("text %+v", m)
	}
	if err := team.ConfirmPhone(ctx, me, in.OrgID, in.Member.ID, m.Body[i+8:i+14]); err != nil {
		t.Fatal(err)
	}
	u, err := team.Person(ctx, in.OrgID, in.Member.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := u.Contact("phone"); !ok || c.VerifiedAt == nil {
		t.Fatalf("phone %+v", u.Contacts)
	}
}
