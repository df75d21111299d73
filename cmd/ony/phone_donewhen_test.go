package main

// Issue 15's "done when": with Twilio's variables set (its API pointed at a fake) and a ladder,
// `ony serve` texts a person; a signed "Y <code>" from their number approves, the same reply from
// another number or with a bad signature does not; and a call decided on the keypad lands in the
// audit log as via call.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

func TestDoneWhenTwilioReplyAndKeypad(t *testing.T) {
	t.Parallel()
	const (
		sid, token, from = "AC00112233445566778899aabbccddeeff", "done-when-twilio-token", "+15005550006"
		person, stranger = "+14155550142", "+14155550100"
	)
	fake := twiliotest.New(t, sid, token)
	data, ladders := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "phone.yaml"), []byte(`name: phone
default: true
steps:
  - name: text
    channels: [sms]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ladders, "call.yaml"), []byte(`name: call
order: 1
match: {actions: ["acme.call"]}
steps:
  - name: call
    channels: [call]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, map[string]string{"ONY_DATA_DIR": data, "ONY_ESCALATION_LADDERS_DIR": ladders,
		"ONY_TWILIO_ACCOUNT_SID": sid, "ONY_TWILIO_AUTH_TOKEN": token, "ONY_TWILIO_FROM": from, "ONY_TWILIO_API_URL": fake.URL()})
	srv.waitReady()
	boot := parseBootstrap(t, srv.Stdout())
	// The operator sets the number, and so vouches for it.
	if r := runOny(t, map[string]string{"ONY_DATA_DIR": data}, "", "admin", "set-user", "--org", boot.OrgID, "--email", boot.Email,
		"--phone", person); r.code != 0 {
		t.Fatalf("set-user: %s", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	drv := &twiliotest.Driver{Key: token, Public: srv.URL, Target: srv.URL, AccountSID: sid}

	var h struct{ ID, Status string }
	agentDo(t, "POST", srv.URL+"/v1/handoffs", boot.Token, `{"action":"acme.frobnicate","title":"Rotate the widgets"}`, 201, &h)
	msgs, err := fake.WaitMessages(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	body := msgs[0].Body
	i := strings.Index(body, "Reply Y ")
	if msgs[0].To != person || i < 0 {
		t.Fatalf("text to %s: %q", msgs[0].To, body)
	}
	reply := "Y " + body[i+8:i+12]
	hook := srv.URL + "/hooks/twilio/sms"
	if r, _ := drv.InboundSMS(t, hook, stranger, from, reply); r.Status != 200 {
		t.Fatalf("a stranger's reply: %d", r.Status)
	}
	if r, _ := drv.InboundSMS(t, hook, person, from, reply, twiliotest.SignWith("not-the-token")); r.Status != 403 {
		t.Fatalf("a forged reply: %d", r.Status)
	}
	agentDo(t, "GET", srv.URL+"/v1/handoffs/"+h.ID, boot.Token, "", 200, &h)
	if h.Status != "pending" {
		t.Fatalf("after a stranger's and a forged reply: %s", h.Status)
	}
	if r, _ := drv.InboundSMS(t, hook, person, from, reply); r.Status != 200 || !strings.Contains(strings.Join(r.TwiML.Messages, " "), "approved") {
		t.Fatalf("the reply: %d %+v", r.Status, r.TwiML)
	}
	agentDo(t, "GET", srv.URL+"/v1/handoffs/"+h.ID+"/wait?timeout=30s", boot.Token, "", 200, &h)
	if h.Status != "approved" {
		t.Fatalf("after the reply: %s", h.Status)
	}

	// A call, decided on the keypad.
	agentDo(t, "POST", srv.URL+"/v1/handoffs", boot.Token, `{"action":"acme.call","title":"Restart the queue"}`, 201, &h)
	calls, err := fake.WaitCalls(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	doc := drv.Answer(t, calls[0], "human")
	if doc.TwiML.Gather == nil {
		t.Fatalf("call document: %d %+v", doc.Status, doc.TwiML)
	}
	if r := drv.Press(t, calls[0], doc.TwiML.Gather, "2"); !r.TwiML.Hangup {
		t.Fatalf("after 2: %+v", r.TwiML)
	}
	agentDo(t, "GET", srv.URL+"/v1/handoffs/"+h.ID+"/wait?timeout=30s", boot.Token, "", 200, &h)
	if h.Status != "denied" {
		t.Fatalf("after the keypad: %s", h.Status)
	}
	out := filepath.Join(t.TempDir(), "audit.json")
	if r := runOny(t, map[string]string{"ONY_DATA_DIR": data}, "", "audit", "export", "--org", boot.OrgID, "-o", out); r.code != 0 {
		t.Fatalf("audit export: %s", r)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ex struct{ Leaves [][]byte }
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	via := map[string]bool{}
	for _, l := range ex.Leaves {
		var leaf struct{ Type, Channel string }
		if err := json.Unmarshal(l, &leaf); err != nil {
			t.Fatal(err)
		}
		if leaf.Type == "handoff.decided" {
			via[leaf.Channel] = true
		}
	}
	if !via["sms"] || !via["call"] {
		t.Errorf("the audit log records decisions via %v, want sms and call", via)
	}
	mustNotContain(t, "the server log", srv.Stderr(), token, person)
	mustNotContainCode(t, "the server log", srv.Stderr(), body[i+8:i+12])
}
