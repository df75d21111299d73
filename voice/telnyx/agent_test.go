package telnyx_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

// agentSetup is a provider in voice-agent mode whose media handler answers 299 and counts its calls.
func agentSetup(t *testing.T) (setup, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	s := newSetupWith(t, func(c *telnyx.Config) {
		c.Media = func(channel.Host) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				served.Add(1)
				w.WriteHeader(299)
			})
		}
	})
	return s, &served
}

// TestAgentDialStreamsToTheMediaRoute: in agent mode the call is connected to the stream (wss of the
// public URL, inbound track, bidirectional RTP µ-law, the token in its client_state) only once machine
// detection says a person answered — a voicemail never hears the agent — and the media route is
// mounted; without Media neither.
func TestAgentDialStreamsToTheMediaRoute(t *testing.T) {
	t.Parallel()
	s, served := agentSetup(t)
	c := dial(t, s, notification(false))
	if c.StreamURL != "" {
		t.Fatalf("the dial streams before anyone answered: %+v", c)
	}
	post(t, s, s.driver.Answered(c, s.fake.ClientState(c.ID)))
	if cmds := s.fake.Commands(); len(cmds) != 0 {
		t.Fatalf("commands before machine detection ended: %+v", cmds)
	}
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "human"))
	c = s.fake.Calls()[0]
	if c.StreamURL != "wss://ony.example.com/hooks/telnyx/media" || c.StreamTrack != "inbound_track" ||
		c.StreamMode != "rtp" || c.StreamCodec != "PCMU" {
		t.Fatalf("call %+v", c)
	}
	st := lastCommand(t, s, "streaming_start")
	if cs := state(t, st.ClientState); cs.Token != token || cs.State != "" {
		t.Fatalf("client state %+v", cs)
	}
	ms, _ := agentSetup(t)
	m := dial(t, ms, notification(false))
	post(t, ms, ms.driver.MachineDetected(m, ms.fake.ClientState(m.ID), "machine"))
	if m = ms.fake.Calls()[0]; m.StreamURL != "" {
		t.Fatalf("a voicemail was connected to the agent: %+v", m)
	}
	resp, err := testhttp.Client.Get(s.url + "/media")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 299 || served.Load() != 1 {
		t.Fatalf("GET media: %d, served %d", resp.StatusCode, served.Load())
	}

	k := newSetup(t)
	kc := dial(t, k, notification(false))
	if kc.StreamURL != "" || kc.StreamTrack != "" || kc.StreamMode != "" || kc.StreamCodec != "" {
		t.Fatalf("keypad-mode call streams: %+v", kc)
	}
	resp, err = testhttp.Client.Get(k.url + "/media")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Fatalf("keypad mode serves media: %d", resp.StatusCode)
	}
}

// TestAgentKeypadTakesOverWhenTheStreamEnds: a person answers, the stream runs and Ony says nothing;
// when the stream stops undecided (or fails) the keypad starts with the script, and decides.
func TestAgentKeypadTakesOverWhenTheStreamEnds(t *testing.T) {
	t.Parallel()
	for _, ending := range []string{"stopped", "failed"} {
		t.Run(ending, func(t *testing.T) {
			t.Parallel()
			s, _ := agentSetup(t)
			n := notification(false)
			c := dial(t, s, n)
			post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "not_sure"))
			post(t, s, s.driver.StreamingStarted(c, s.fake.ClientState(c.ID)))
			if cmds := spoken(s); len(cmds) != 0 {
				t.Fatalf("Ony spoke over the agent's stream: %+v", cmds)
			}
			body := s.driver.StreamingStopped(c, s.fake.ClientState(c.ID))
			if ending == "failed" {
				body = s.driver.StreamingFailed(c, s.fake.ClientState(c.ID), "connection refused")
			}
			post(t, s, body)
			g := lastCommand(t, s, "gather_using_speak")
			want := voice.Start(n)
			if g.Payload != want.Say || g.MinimumDigits != 1 || g.CallID != c.ID {
				t.Fatalf("gather %+v", g)
			}
			if cs := state(t, g.ClientState); cs.Token != token || cs.State != want.State {
				t.Fatalf("gather state %+v", cs)
			}
			// A second stop (another event id) does not start the keypad over.
			post(t, s, s.driver.StreamingStopped(c, s.fake.ClientState(c.ID)))
			if cmds := spoken(s); len(cmds) != 1 {
				t.Fatalf("commands %+v", cmds)
			}
			post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "2", "valid"))
			if a := s.host.Answers(); len(a) != 1 || a[0].Choice != channel.ChoiceDeny || a[0].Channel != "call" {
				t.Fatalf("answers %+v", a)
			}
		})
	}
}

// TestAgentDecidedHandoffSaysGoodbye: the agent decided (or another channel did); when the stream
// stops the keypad only says goodbye and hangs up.
func TestAgentDecidedHandoffSaysGoodbye(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "human"))
	s.host.mu.Lock()
	s.host.recall = func(string) (channel.Notification, error) {
		return channel.Notification{}, problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call")
	}
	s.host.mu.Unlock()
	post(t, s, s.driver.StreamingStopped(c, s.fake.ClientState(c.ID)))
	sp := lastCommand(t, s, "speak")
	if !strings.Contains(sp.Payload, "already decided") || !strings.Contains(sp.Payload, "Goodbye") {
		t.Fatalf("speak %q", sp.Payload)
	}
	post(t, s, s.driver.SpeakEnded(c, s.fake.ClientState(c.ID)))
	lastCommand(t, s, "hangup")
	if len(s.host.Answers()) != 0 {
		t.Fatal("decided again")
	}
}

// TestAgentMachineHangsUpAndNeverStartsTheKeypad: a machine is hung up on as in keypad mode; the
// stream's stop that follows does not start the keypad.
func TestAgentMachineHangsUpAndNeverStartsTheKeypad(t *testing.T) {
	t.Parallel()
	s, _ := agentSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "machine"))
	lastCommand(t, s, "hangup")
	post(t, s, s.driver.StreamingStopped(c, s.fake.ClientState(c.ID)))
	if cmds := s.fake.Commands(); len(cmds) != 1 {
		t.Fatalf("commands %+v", cmds)
	}
}

// TestStreamingEventsIgnoredInKeypadMode: a keypad-mode call has no stream to take over from.
func TestStreamingEventsIgnoredInKeypadMode(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.StreamingStopped(c, s.fake.ClientState(c.ID)))
	if cmds := s.fake.Commands(); len(cmds) != 0 {
		t.Fatalf("commands %+v", cmds)
	}
}

// spoken is the commands Ony gave the call besides connecting its stream.
func spoken(s setup) []telnyxtest.Command {
	var out []telnyxtest.Command
	for _, c := range s.fake.Commands() {
		if c.Action != "streaming_start" {
			out = append(out, c)
		}
	}
	return out
}
