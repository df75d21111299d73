package main

// Issue 16's "done when": a simulated call on (fake) Twilio reaches the (fake) realtime model, hears
// the explanation, and ends in an audited decision confirmed on the keypad; the same with the model
// killed mid-call (the keypad takes over); and afterwards no byte of the call's audio or transcript is
// anywhere on disk (the SQLite database and its files, the data directory) or in the server's log.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/voice/agent/realtimetest"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/media/mediatest"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

func TestDoneWhenVoiceAgentCall(t *testing.T) {
	t.Parallel()
	const (
		sid, token, from = "AC99887766554433221100ffeeddccbbaa", "done-when-agent-token", "+15005550006"
		person           = "+14155550142"
	)
	fake := twiliotest.New(t, sid, token)
	model := realtimetest.New(t, "sk-done-when", realtimetest.Turn{Kind: realtimetest.Explain}, realtimetest.Turn{Kind: realtimetest.Propose, Option: "approve"})
	data, ladders := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "call.yaml"), []byte("name: call\ndefault: true\nsteps:\n  - channels: [call]\n    targets: [role:admin]\n    wait: 1h\nend: wait\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, map[string]string{"ONY_DATA_DIR": data, "ONY_ESCALATION_LADDERS_DIR": ladders,
		"ONY_TWILIO_ACCOUNT_SID": sid, "ONY_TWILIO_AUTH_TOKEN": token, "ONY_TWILIO_FROM": from, "ONY_TWILIO_API_URL": fake.URL(),
		"ONY_VOICE_AGENT_URL": model.URL, "ONY_VOICE_AGENT_API_KEY": "sk-done-when", "ONY_VOICE_AGENT_FIRST_AUDIO": "3s"})
	srv.waitReady()
	boot := parseBootstrap(t, srv.Stdout())
	if r := runOny(t, map[string]string{"ONY_DATA_DIR": data}, "", "admin", "set-user", "--org", boot.OrgID, "--email", boot.Email, "--phone", person); r.code != 0 {
		t.Fatalf("set-user: %s", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	drv := &twiliotest.Driver{Key: token, Public: srv.URL, Target: srv.URL, AccountSID: sid}
	callerSays := mediatest.Tone(523, 200*time.Millisecond) // the callee's "voice"

	// call places a handoff's call, picks it up and opens its media stream.
	call := func(n int) (string, twiliotest.Call, twiliotest.TwiML, *mediatest.Client) {
		var h struct{ ID string }
		agentDo(t, "POST", srv.URL+"/v1/handoffs", boot.Token, `{"action":"acme.restart","title":"Restart the queue"}`, 201, &h)
		calls, err := fake.WaitCalls(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		c := calls[n-1]
		var doc twiliotest.TwiML
		for range 100 { // the send is recorded a moment after the fake accepted the call
			if doc = drv.Answer(t, c, "human").TwiML; doc.Stream != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if doc.Stream == nil {
			t.Fatalf("the call document connects no stream: %+v", doc)
		}
		return h.ID, c, doc, mediatest.Dial(t, doc.Stream.URL, media.Twilio, doc.Stream.Params, mediatest.CallRef(c.SID), mediatest.Loop(callerSays))
	}
	status := func(id string) string {
		var h struct{ Status string }
		agentDo(t, "GET", srv.URL+"/v1/handoffs/"+id+"/wait?timeout=30s", boot.Token, "", 200, &h)
		return h.Status
	}

	// 1. The model explains and proposes; 1 on the keypad confirms.
	id1, _, _, mc := call(1)
	if !mc.WaitReceived(1600, 30*time.Second) {
		t.Fatal("the explanation never reached the callee")
	}
	for !slices.Contains(model.Types(), "conversation.item.create") {
		if ctx.Err() != nil {
			t.Fatal("the model's proposal never reached Ony")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mc.DTMF("1")
	if s := status(id1); s != "approved" {
		t.Fatalf("after the keypad: %s", s)
	}

	// 2. The model dies mid-call: the stream ends, the call resumes at the keypad, and 1 approves.
	id2, c2, doc2, mc2 := call(2)
	if !mc2.WaitReceived(800, 30*time.Second) {
		t.Fatal("the second explanation never reached the callee")
	}
	model.Kill()
	if code, closed := mc2.WaitClosed(30 * time.Second); !closed || code != 1000 {
		t.Fatalf("the stream closed with %d (%t)", code, closed)
	}
	r := drv.Post(t, doc2.Redirect, map[string][]string{"CallSid": {c2.SID}, "To": {person}, "From": {from}})
	if r.TwiML.Gather == nil {
		t.Fatalf("the keypad did not take over: %+v", r.TwiML)
	}
	if r = drv.Press(t, c2, r.TwiML.Gather, "1"); !r.TwiML.Hangup {
		t.Fatalf("after 1: %+v", r.TwiML)
	}
	if s := status(id2); s != "approved" {
		t.Fatalf("after the keypad: %s", s)
	}

	// Both decisions are in the audit log, via call.
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
	calls := 0
	for _, l := range ex.Leaves {
		var leaf struct{ Type, Channel string }
		_ = json.Unmarshal(l, &leaf)
		if leaf.Type == "handoff.decided" && leaf.Channel == "call" {
			calls++
		}
	}
	if calls != 2 {
		t.Errorf("%d decisions via call in the audit log, want 2", calls)
	}

	// Nothing of the calls' audio or transcript on disk or in the log.
	srv.cmd.Process.Signal(os.Interrupt)
	srv.exited(30 * time.Second)
	modelAudio := realtimetest.CanaryTone(160)
	canaries := [][]byte{[]byte(realtimetest.TextCanary), modelAudio, []byte(base64.StdEncoding.EncodeToString(modelAudio)),
		callerSays[:160], []byte(base64.StdEncoding.EncodeToString(callerSays[:160]))}
	search := func(name string, b []byte) {
		for _, c := range canaries {
			if bytes.Contains(b, c) {
				t.Errorf("%s holds call audio or transcript (%d-byte canary)", name, len(c))
			}
		}
	}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil {
			search(strings.TrimPrefix(path, data), b)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	search("the server log", []byte(srv.Stdout()+srv.Stderr()))
}
