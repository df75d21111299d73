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
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

type telnyxAgentEnv struct {
	agentBase
	tx  *telnyxtest.Server
	drv *telnyxtest.Driver
}

func startTelnyxAgent(t *testing.T, dialect string, turns ...realtimetest.Turn) *telnyxAgentEnv {
	t.Helper()
	e := &telnyxAgentEnv{tx: telnyxtest.New(t, txKey), drv: telnyxtest.NewDriver(t)}
	e.agentBase = startAgentBase(t, dialect, func(c *config.Config) {
		c.Telnyx = config.Telnyx{APIKey: config.Secret(txKey), PublicKey: e.drv.PublicKey, ConnectionID: "conn-e2e", From: txFrom, APIURL: e.tx.URL()}
	}, turns...)
	return e
}

// post sends a signed Call Control event to Ony's call hook, which must accept it.
func (e *telnyxAgentEnv) post(t *testing.T, body []byte) {
	t.Helper()
	if st := e.drv.Post(t, e.in.URL+"/hooks/telnyx/call", body, telnyxtest.Good); st != 200 {
		t.Fatalf("call event: status %d", st)
	}
}

// lastCommand is the newest call command, which must be action.
func (e *telnyxAgentEnv) lastCommand(t *testing.T, action string) telnyxtest.Command {
	t.Helper()
	cmds := e.tx.Commands()
	if len(cmds) == 0 || cmds[len(cmds)-1].Action != action {
		t.Fatalf("commands %+v, want a last %s", cmds, action)
	}
	return cmds[len(cmds)-1]
}

// call creates a high-risk handoff; Telnyx dials; a person answers (machine detection: human) and
// only then does Ony connect the call to the media stream (streaming_start, with the token in its
// client_state), starting no keypad.
func (e *telnyxAgentEnv) call(ctx context.Context, t *testing.T) (*client.Handoff, telnyxtest.Call, *mediatest.Client) {
	t.Helper()
	h, _, err := e.in.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy.apply", Title: "Ship shop 1.42",
		Labels: map[string]string{"env": "prod"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	c := waitFor(ctx, t, "the call", e.tx.Calls, 1)[0]
	waitSend(ctx, t, e.in, h.ID, "call", store.SendSent)
	if c.StreamURL != "" {
		t.Fatalf("the dial streams before anyone answered: %+v", c)
	}
	e.post(t, e.drv.Answered(c, e.tx.ClientState(c.ID)))
	e.post(t, e.drv.MachineDetected(c, e.tx.ClientState(c.ID), "human"))
	// A person answered: Ony connects the call to the agent's stream, and says nothing itself.
	c = e.tx.Calls()[0]
	if c.StreamURL != "wss://ony.test/hooks/telnyx/media" ||
		c.StreamTrack != "inbound_track" || c.StreamMode != "rtp" || c.StreamCodec != "PCMU" {
		t.Fatalf("stream %+v", c)
	}
	cs, err := telnyx.ParseClientState(e.tx.ClientState(c.ID))
	if err != nil || cs.Token == "" {
		t.Fatalf("client_state: %+v %v", cs, err)
	}
	e.post(t, e.drv.StreamingStarted(c, e.tx.ClientState(c.ID)))
	if cmds := e.tx.Commands(); len(cmds) != 1 || cmds[0].Action != "streaming_start" {
		t.Fatalf("Ony spoke over the agent's stream: %+v", cmds)
	}
	ws := strings.Replace(c.StreamURL, "wss://ony.test", e.in.URL, 1)
	return h, c, mediatest.Dial(t, ws, media.Telnyx, map[string]string{"t": cs.Token}, mediatest.CallRef(c.ID),
		mediatest.Loop(mediatest.Tone(440, 200*time.Millisecond)))
}

// TestVoiceAgentTelnyxEndToEnd (issue 16) on PostgreSQL: the Telnyx call streams to the media
// websocket; the model explains and proposes approve; the callee confirms with 1 and their TOTP on
// the keypad; the handoff is approved via call and the call's row keeps the outcome. When Telnyx then
// reports the stream stopped, the keypad only says goodbye and hangs up. The token opens no second
// stream; nothing of the transcript or the token reaches the log.
func TestVoiceAgentTelnyxEndToEnd(t *testing.T) {
	t.Parallel()
	e := startTelnyxAgent(t, "postgres", realtimetest.Turn{Kind: realtimetest.Explain}, realtimetest.Turn{Kind: realtimetest.Propose, Option: "approve"})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h, c, mc := e.call(ctx, t)

	// The model explained (audio reached the callee) and proposed: Ony answered the tool call.
	e.approveByKeypad(ctx, t, h, mc)
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.State != store.SendAnswered || s.Detail != "approved" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
	// The stream ended, the call goes on: the keypad only says goodbye, then hangs up.
	e.post(t, e.drv.StreamingStopped(c, e.tx.ClientState(c.ID)))
	if sp := e.lastCommand(t, "speak"); !strings.Contains(sp.Payload, "already decided") {
		t.Errorf("after the decision: %q", sp.Payload)
	}
	e.post(t, e.drv.SpeakEnded(c, e.tx.ClientState(c.ID)))
	e.lastCommand(t, "hangup")

	cs, _ := telnyx.ParseClientState(c.ClientState)
	again := mediatest.Dial(t, strings.Replace(c.StreamURL, "wss://ony.test", e.in.URL, 1), media.Telnyx, map[string]string{"t": cs.Token})
	if code, closed := again.WaitClosed(10 * time.Second); !closed || code != 1008 {
		t.Errorf("a reused token: closed %t with %d, want 1008", closed, code)
	}
	if logs := e.logs.String(); strings.Contains(logs, realtimetest.TextCanary) || strings.Contains(logs, cs.Token) {
		t.Error("the log holds the transcript canary or the call's token")
	}
}

// TestVoiceAgentTelnyxModelDies (issue 16): the model closes mid-call; the stream ends at once,
// Telnyx reports streaming.stopped, the keypad takes over with the script and the call still
// decides (2: denied).
func TestVoiceAgentTelnyxModelDies(t *testing.T) {
	t.Parallel()
	e := startTelnyxAgent(t, "sqlite", realtimetest.Turn{Kind: realtimetest.Explain, Frames: 3}, realtimetest.Turn{Kind: realtimetest.Close})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, c, mc := e.call(ctx, t)
	if code, closed := mc.WaitClosed(20 * time.Second); !closed || code != 1000 {
		t.Fatalf("the stream closed with %d (%t)", code, closed)
	}
	e.post(t, e.drv.StreamingStopped(c, e.tx.ClientState(c.ID)))
	g := e.lastCommand(t, "gather_using_speak")
	if !strings.Contains(g.Payload, "Press 1 to approve") {
		t.Fatalf("the keypad did not take over: %+v", g)
	}
	e.post(t, e.drv.GatherEnded(c, e.tx.ClientState(c.ID), "2", "valid"))
	if got, err := e.in.Agent(t).Wait(ctx, h.ID); err != nil || got.Status != client.StatusDenied || got.Decision.Channel != "call" {
		t.Fatalf("after the keypad: %+v %v", got, err)
	}
	if s := lastSend(ctx, t, e.in, h.ID, "call"); s.Detail != "denied" {
		t.Errorf("the call's row: %s %s", s.State, s.Detail)
	}
}
