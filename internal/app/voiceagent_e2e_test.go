package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/browsertest"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice/agent/realtimetest"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/media/mediatest"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

const callLadder = `name: call
default: true
steps:
  - channels: [call]
    targets: [role:member]
    wait: 1h
end: wait
`

// syncBuf is a log sink tests read.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// agentBase is an instance with the voice agent on (a fake realtime model) and one telephony
// provider (provider configures it), a ladder that calls the member, whose phone is set and who has
// TOTP (app is their authenticator); logs is the instance's log.
type agentBase struct {
	in    *testserver.Instance
	model *realtimetest.Server
	app   *browsertest.Authenticator
	logs  *syncBuf
}

func startAgentBase(t *testing.T, dialect string, provider func(*config.Config), turns ...realtimetest.Turn) agentBase {
	t.Helper()
	e := agentBase{model: realtimetest.New(t, "sk-e2e", turns...), logs: &syncBuf{}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "call.yaml"), []byte(callLadder), 0o600); err != nil {
		t.Fatal(err)
	}
	e.in = testserver.Start(t, testserver.Options{Dialect: dialect, StepUp: true,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Configure: func(c *config.Config) {
			c.PublicURL = phonePublic
			c.Escalation.LaddersDir = dir
			provider(c)
			c.VoiceAgent.URL, c.VoiceAgent.APIKey = e.model.URL, "sk-e2e"
			c.VoiceAgent.FirstAudio = config.Duration(2 * time.Second)
		}}).Seed(t)
	(&chatEnv{in: e.in}).link(t, e.in.OrgID, e.in.Member.Email, "phone", memberPhone)
	ctx := context.Background()
	enr, err := e.in.App.TOTP.Begin(ctx, e.in.OrgID, e.in.Member.ID, e.in.Member.Email)
	if err != nil {
		t.Fatal(err)
	}
	e.app = &browsertest.Authenticator{Secret: enr.Secret}
	if err := e.in.App.TOTP.Confirm(ctx, e.in.OrgID, e.in.Member.ID, e.app.Code(t)); err != nil {
		t.Fatal(err)
	}
	return e
}

type agentEnv struct {
	agentBase
	tw  *twiliotest.Server
	drv *twiliotest.Driver
}

func startAgent(t *testing.T, dialect string, turns ...realtimetest.Turn) *agentEnv {
	t.Helper()
	e := &agentEnv{tw: twiliotest.New(t, twSID, twToken)}
	e.agentBase = startAgentBase(t, dialect, func(c *config.Config) {
		c.Twilio = config.Twilio{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIURL: e.tw.URL()}
	}, turns...)
	e.drv = &twiliotest.Driver{Key: twToken, Public: phonePublic, Target: e.in.URL, AccountSID: twSID}
	return e
}

// call creates a high-risk handoff and picks up its call: the document connects it to the media
// websocket; the returned client is the provider's side of that stream.
func (e *agentEnv) call(ctx context.Context, t *testing.T, n int) (*client.Handoff, twiliotest.Call, twiliotest.TwiML, *mediatest.Client) {
	t.Helper()
	h, _, err := e.in.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy.apply", Title: "Ship shop 1.42",
		Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(ctx, t, "the call", e.tw.Calls, n)[n-1]
	waitSend(ctx, t, e.in, h.ID, "call", store.SendSent)
	doc := e.drv.Answer(t, c, "human").TwiML
	if doc.Stream == nil || doc.Stream.Params["t"] == "" || doc.Redirect == "" {
		t.Fatalf("call document %+v", doc)
	}
	ws := strings.Replace(doc.Stream.URL, "wss://ony.test", e.in.URL, 1)
	return h, c, doc, mediatest.Dial(t, ws, media.Twilio, doc.Stream.Params, mediatest.CallRef(c.SID),
		mediatest.Loop(mediatest.Tone(440, 200*time.Millisecond)))
}

// TestVoiceAgentEndToEnd (issue 16) on PostgreSQL: the call document connects the call to the media
// websocket; the model explains and proposes approve; the callee confirms with 1 and their TOTP on
// the keypad (digits never reach the model); the handoff is approved via call, the call's row keeps
// the outcome; the token cannot open a second stream, and a made-up one opens none. No transcript
// canary reaches the log.
func TestVoiceAgentEndToEnd(t *testing.T) {
	t.Parallel()
	e := startAgent(t, "postgres", realtimetest.Turn{Kind: realtimetest.Explain}, realtimetest.Turn{Kind: realtimetest.Propose, Option: "approve"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, c, doc, mc := e.call(ctx, t, 1)

	// The model explained (audio reached the callee) and proposed: Ony answered the tool call.
	e.approveByKeypad(ctx, t, h, mc)
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.State != store.SendAnswered || s.Detail != "approved" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
	// After the decision, the provider resumes the document: the keypad only says goodbye.
	if r := e.drv.Post(t, doc.Redirect, map[string][]string{"CallSid": {c.SID}, "To": {memberPhone}, "From": {twFrom}}); !r.TwiML.Hangup {
		t.Errorf("resume after the decision: %+v", r.TwiML)
	}

	// The token opened its stream once; a second stream with it, and one with a made-up token, are refused.
	again := mediatest.Dial(t, strings.Replace(doc.Stream.URL, "wss://ony.test", e.in.URL, 1), media.Twilio, doc.Stream.Params)
	if code, closed := again.WaitClosed(10 * time.Second); !closed || code != 1008 {
		t.Errorf("a reused token: closed %t with %d, want 1008", closed, code)
	}
	forged := mediatest.Dial(t, strings.Replace(doc.Stream.URL, "wss://ony.test", e.in.URL, 1), media.Twilio,
		map[string]string{"t": "ony_dt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	if code, closed := forged.WaitClosed(10 * time.Second); !closed || code != 1008 {
		t.Errorf("a made-up token: closed %t with %d, want 1008", closed, code)
	}
	if logs := e.logs.String(); strings.Contains(logs, realtimetest.TextCanary) || strings.Contains(logs, doc.Stream.Params["t"]) {
		t.Error("the log holds the transcript canary or the call's token")
	}
}

// TestVoiceAgentModelDies (issue 16): the model closes mid-call; the stream ends at once, the
// provider resumes the document at the keypad, and the call still decides (2: denied).
func TestVoiceAgentModelDies(t *testing.T) {
	t.Parallel()
	e := startAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Explain, Frames: 3}, realtimetest.Turn{Kind: realtimetest.Close})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, c, doc, mc := e.call(ctx, t, 1)
	if code, closed := mc.WaitClosed(20 * time.Second); !closed || code != 1000 {
		t.Fatalf("the stream closed with %d (%t)", code, closed)
	}
	r := e.drv.Post(t, doc.Redirect, map[string][]string{"CallSid": {c.SID}, "To": {memberPhone}, "From": {twFrom}})
	if r.TwiML.Gather == nil || !strings.Contains(strings.Join(r.TwiML.Gather.Says, " "), "Press 1 to approve") {
		t.Fatalf("the keypad did not take over: %+v", r.TwiML)
	}
	if r = e.drv.Press(t, c, r.TwiML.Gather, "2"); !r.TwiML.Hangup {
		t.Fatalf("after 2: %+v", r.TwiML)
	}
	if got, err := e.in.Agent(t).Wait(ctx, h.ID); err != nil || got.Status != client.StatusDenied || got.Decision.Channel != "call" {
		t.Fatalf("after the keypad: %+v %v", got, err)
	}
}

// TestVoiceAgentBargeIn (issue 16): the callee speaks while the model is talking: Ony cancels the
// model's answer, truncates it at what the callee heard and clears the provider's audio buffer.
func TestVoiceAgentBargeIn(t *testing.T) {
	t.Parallel()
	e := startAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Interrupt})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, _, mc := e.call(ctx, t, 1)
	if !mc.WaitClear(20 * time.Second) {
		t.Fatal("the provider's audio buffer was never cleared")
	}
	types := waitFor(ctx, t, "the truncate", func() []string {
		return slices.DeleteFunc(e.model.Types(), func(s string) bool { return s != "response.cancel" && s != "conversation.item.truncate" })
	}, 2)
	if types[0] != "response.cancel" || types[1] != "conversation.item.truncate" {
		t.Errorf("the model was sent %v", types)
	}
	if p := e.model.Problems(); len(p) > 0 {
		t.Errorf("the fake model saw: %v", p)
	}
}

// TestVoiceAgentProposalDenied (issue 16): the model proposes approving, the callee presses 2: the
// handoff is denied (2 denies, as on the keypad), via call.
func TestVoiceAgentProposalDenied(t *testing.T) {
	t.Parallel()
	e := startAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Explain}, realtimetest.Turn{Kind: realtimetest.Propose, Option: "approve"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, _, _, mc := e.call(ctx, t, 1)
	waitFor(ctx, t, "the proposal", func() []string {
		return slices.DeleteFunc(e.model.Types(), func(s string) bool { return s != "conversation.item.create" })
	}, 1)
	mc.DTMF("2")
	got, err := e.in.Agent(t).Wait(ctx, h.ID)
	if err != nil || got.Status != client.StatusDenied || got.Decision.Channel != "call" {
		t.Fatalf("after 2: %+v %v", got, err)
	}
	// The outcome is kept once the model has said goodbye and the stream is closed.
	if code, closed := mc.WaitClosed(20 * time.Second); !closed || code != 1000 {
		t.Errorf("the stream closed with %d (%t)", code, closed)
	}
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.Detail != "denied" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
}

// approveByKeypad plays the callee of a call the model explained and proposed to approve: it waits for
// the model's audio and proposal, confirms with 1 and the TOTP code on the keypad, and checks that the
// agent's wait returns approved by call, the stream closes normally and the code never reached the
// model.
func (e agentBase) approveByKeypad(ctx context.Context, t *testing.T, h *client.Handoff, mc *mediatest.Client) {
	t.Helper()
	if !mc.WaitReceived(1600, 20*time.Second) {
		t.Fatal("no audio from the model reached the callee")
	}
	waitFor(ctx, t, "the proposal", func() []string {
		return slices.DeleteFunc(e.model.Types(), func(s string) bool { return s != "conversation.item.create" })
	}, 1)
	mc.DTMF("1")
	code := e.app.Code(t)
	for _, d := range code {
		mc.DTMF(string(d))
	}
	got, err := e.in.Agent(t).Wait(ctx, h.ID)
	if err != nil || got.Status != client.StatusApproved || got.Decision.Channel != "call" {
		t.Fatalf("after the keypad: %+v %v", got, err)
	}
	if code, closed := mc.WaitClosed(20 * time.Second); !closed || code != 1000 {
		t.Errorf("the stream closed with %d (%t)", code, closed)
	}
	if e.model.Contains(code) {
		t.Error("the TOTP code typed on the keypad reached the model")
	}
}
