package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice/agent/realtimetest"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/media/mediatest"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

const (
	plAuthID, plToken, plFrom = "MAODUZYTQ0Y2FMYJBLOW", "e2e-plivo-auth-token", "+15005550008"
)

type plivoAgentEnv struct {
	agentBase
	pl  *plivotest.Server
	drv *plivotest.Driver
}

// startPlivoAgent runs Ony with Plivo as its only telephony provider and the voice agent on.
func startPlivoAgent(t *testing.T, dialect string, turns ...realtimetest.Turn) *plivoAgentEnv {
	t.Helper()
	e := &plivoAgentEnv{pl: plivotest.New(t, plAuthID, plToken)}
	e.agentBase = startAgentBase(t, dialect, func(c *config.Config) {
		c.Plivo = config.Plivo{AuthID: plAuthID, AuthToken: plToken, From: plFrom, APIURL: e.pl.URL()}
	}, turns...)
	e.drv = plivotest.NewDriver(t, plToken).Via(phonePublic, e.in.URL)
	return e
}

// call creates a high-risk handoff and picks up its Plivo call: the answer document streams it to
// the media websocket; the returned client is Plivo's side of that stream (announcing the call uuid).
func (e *plivoAgentEnv) call(ctx context.Context, t *testing.T) (*client.Handoff, plivotest.Call, *plivotest.Document, *mediatest.Client) {
	t.Helper()
	h, _, err := e.in.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy.apply", Title: "Ship shop 1.42",
		Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(ctx, t, "the call", e.pl.Calls, 1)[0]
	waitSend(ctx, t, e.in, h.ID, "call", store.SendSent)
	r := e.drv.Answer(c)
	doc := r.Doc
	if doc == nil || doc.Stream == nil || doc.Stream.Params["t"] == "" || doc.Redirect == "" || len(doc.Says) != 0 {
		t.Fatalf("answer document: %d %s", r.Status, r.Body)
	}
	if !strings.HasPrefix(doc.Stream.URL, "wss://ony.test/hooks/plivo/media?") {
		t.Fatalf("stream URL %q", doc.Stream.URL)
	}
	ws := strings.Replace(doc.Stream.URL, "wss://ony.test", e.in.URL, 1)
	return h, c, doc, mediatest.Dial(t, ws, media.Plivo, doc.Stream.Params, mediatest.CallRef(c.CallUUID),
		mediatest.Loop(mediatest.Tone(440, 200*time.Millisecond)))
}

// TestVoiceAgentPlivoEndToEnd (issue 16): a Plivo call's answer document streams it to the media
// websocket (token in the extra headers); the model explains and proposes approve; the callee confirms
// with 1 and their TOTP on the keypad (digits never reach the model); the handoff is approved via
// call and the call's send — found by Plivo's request_uuid, not the stream's call uuid — keeps the
// outcome. Plivo then follows the Redirect: the keypad only says goodbye. The token cannot open a
// second stream, and the log holds neither the transcript canary nor the token.
func TestVoiceAgentPlivoEndToEnd(t *testing.T) {
	t.Parallel()
	e := startPlivoAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Explain}, realtimetest.Turn{Kind: realtimetest.Propose, Option: "approve"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, c, doc, mc := e.call(ctx, t)

	// The model explained (audio reached the callee) and proposed: Ony answered the tool call.
	e.approveByKeypad(ctx, t, h, mc)
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.State != store.SendAnswered || s.Detail != "approved" || s.Ref != c.RequestUUID {
		t.Errorf("the call's row: %s %s (ref is the request_uuid: %t)", s.State, s.Detail, s.Ref == c.RequestUUID)
	}
	// The socket closed; Plivo runs the next verb: the keypad only says goodbye.
	if r := e.drv.Silence(c, doc); r.Doc == nil || !r.Doc.Hangup || r.Doc.Gather != nil {
		t.Errorf("resume after the decision: %d %s", r.Status, r.Body)
	}

	ws := strings.Replace(doc.Stream.URL, "wss://ony.test", e.in.URL, 1)
	again := mediatest.Dial(t, ws, media.Plivo, doc.Stream.Params)
	if code, closed := again.WaitClosed(10 * time.Second); !closed || code != 1008 {
		t.Errorf("a reused token: closed %t with %d, want 1008", closed, code)
	}
	if logs := e.logs.String(); strings.Contains(logs, realtimetest.TextCanary) || strings.Contains(logs, doc.Stream.Params["t"]) {
		t.Error("the log holds the transcript canary or the call's token")
	}
}

// TestVoiceAgentPlivoModelDies (issue 16): the model closes mid-call; the stream ends at once, Plivo
// follows the Redirect to the keypad, which says the script and menu, and the call still decides
// (2: denied), kept on the call's send.
func TestVoiceAgentPlivoModelDies(t *testing.T) {
	t.Parallel()
	e := startPlivoAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Explain, Frames: 3}, realtimetest.Turn{Kind: realtimetest.Close})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, c, doc, mc := e.call(ctx, t)
	if code, closed := mc.WaitClosed(20 * time.Second); !closed || code != 1000 {
		t.Fatalf("the stream closed with %d (%t)", code, closed)
	}
	r := e.drv.Silence(c, doc)
	if r.Doc == nil || r.Doc.Gather == nil || !strings.Contains(strings.Join(r.Doc.Says, " "), "Press 1 to approve") {
		t.Fatalf("the keypad did not take over: %d %s", r.Status, r.Body)
	}
	if r = e.drv.Press(c, r.Doc, "2"); r.Doc == nil || !r.Doc.Hangup {
		t.Fatalf("after 2: %d %s", r.Status, r.Body)
	}
	if got, err := e.in.Agent(t).Wait(ctx, h.ID); err != nil || got.Status != client.StatusDenied || got.Decision.Channel != "call" {
		t.Fatalf("after the keypad: %+v %v", got, err)
	}
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.State != store.SendAnswered || s.Detail != "denied" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
}
