// Package realtimetest is a fake OpenAI Realtime (GA) server for the voice agent's tests: it checks
// the bearer token and the session.update shape, plays scripted turns and records client events.
package realtimetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ony-ai/ony/voice/media/mediatest"
)

// Kind is a scripted behaviour.
type Kind int

const (
	// Explain answers a response.create with audio deltas of a canary tone and transcript deltas
	// containing TextCanary, then response.done.
	Explain Kind = iota
	// Propose answers the callee's next audio with a propose_decision function call for Option.
	Propose
	// Interrupt answers with 2 s of audio, then, after 300 ms, input_audio_buffer.speech_started; it
	// expects response.cancel and conversation.item.truncate.
	Interrupt
	// Slow never answers.
	Slow
	// Error sends an error event, at once (without waiting for a response.create).
	Error
	// Close closes the socket abruptly, at once.
	Close
	// Garbage sends bytes that are not JSON, at once.
	Garbage
)

// TextCanary is in every transcript delta; it must never reach a log.
const TextCanary = "CANARY-TRANSCRIPT-7f3a9c"

// Turn is one scripted step. Explain, Interrupt and Slow each answer the next response.create;
// Propose answers the callee's next audio (as server VAD would); Error, Close and Garbage happen as
// soon as the turn before them is done.
type Turn struct {
	Kind   Kind
	Option string // Propose
	Beta   bool   // Explain: use the beta event name response.audio.delta
	Frames int    // Explain: how many 20 ms deltas (default 10)
}

// Event is one client event the server received.
type Event struct {
	Type string
	Raw  []byte
}

// Server is the fake model.
type Server struct {
	URL    string // ws://…
	APIKey string

	t      testing.TB
	hs     *httptest.Server
	turns  []Turn
	mu     sync.Mutex
	events []Event
	errs   []string
	audio  int // bytes of audio sent to the client
	conns  int
	item   int
	live   []*websocket.Conn
}

// Kill drops every open connection at once, as a crashed model server would (no close frame).
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.live {
		_ = c.NetConn().Close()
	}
	s.live = nil
}

// New starts a fake server with key as the expected API key, playing turns in order; once the script
// is over, each response.create gets a short goodbye (Explain).
func New(t testing.TB, key string, turns ...Turn) *Server {
	t.Helper()
	s := &Server{t: t, APIKey: key, turns: turns}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.hs.Close)
	s.URL = "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/v1/realtime"
	return s
}

// Events returns every client event received so far.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Types returns the types of the client events received so far, in order.
func (s *Server) Types() []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Type)
	}
	return out
}

// Problems returns what the server found wrong with the client (bad auth, session shape, missing
// cancel/truncate, ...).
func (s *Server) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errs...)
}

// AudioSent is how many bytes of audio the server sent.
func (s *Server) AudioSent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audio
}

// Contains reports whether any client event's raw bytes contain sub (a DTMF or TOTP digit string
// that must not have been forwarded).
func (s *Server) Contains(sub string) bool {
	for _, e := range s.Events() {
		if strings.Contains(string(e.Raw), sub) {
			return true
		}
	}
	return false
}

func (s *Server) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		s.problem("bad Authorization header")
		http.Error(w, `{"error":{"code":"invalid_api_key"}}`, http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.problem("upgrade: %v", err)
		return
	}
	defer conn.Close()
	s.mu.Lock()
	s.conns++
	s.live = append(s.live, conn)
	s.mu.Unlock()

	in := make(chan Event, 256)
	go func() {
		defer close(in)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var e struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(msg, &e)
			ev := Event{Type: e.Type, Raw: msg}
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			in <- ev
		}
	}()
	p := &player{s: s, conn: conn, in: in}
	first, ok := <-in
	if !ok {
		return
	}
	if err := checkSession(first.Raw); err != nil {
		s.problem("session.update: %v", err)
		p.write(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "code": "bad_session"}})
		return
	}
	p.write(map[string]any{"type": "session.updated"})
	turns := s.turns
	for {
		var t Turn
		if len(turns) > 0 {
			t, turns = turns[0], turns[1:]
		} else {
			t = Turn{Kind: Explain}
		}
		switch t.Kind {
		case Error:
			p.write(map[string]any{"type": "error", "error": map[string]any{"type": "server_error", "code": "internal"}})
			p.drain()
			return
		case Close:
			return // the deferred Close drops the socket without a close frame
		case Garbage:
			_ = conn.WriteMessage(websocket.TextMessage, []byte("\x00{not json"))
			p.drain()
			return
		}
		// A proposal or an interruption follows the callee's speech (server VAD would answer it);
		// everything else answers the client's response.create.
		wait := "response.create"
		if t.Kind == Propose {
			wait = "input_audio_buffer.append"
		}
		if !p.waitFor(wait) {
			return
		}
		switch t.Kind {
		case Slow:
			p.drain()
			return
		case Explain:
			n := t.Frames
			if n <= 0 {
				n = 10
			}
			p.explain(t.Beta, n)
		case Propose:
			p.propose(t.Option)
		case Interrupt:
			p.interrupt()
		}
	}
}

// checkSession checks a GA session.update: pcmu both ways, server VAD, one propose_decision tool
// with an option enum, tool_choice auto.
func checkSession(raw []byte) error {
	var u struct {
		Type    string `json:"type"`
		Session struct {
			Type             string   `json:"type"`
			OutputModalities []string `json:"output_modalities"`
			Audio            struct {
				Input struct {
					Format        struct{ Type string } `json:"format"`
					TurnDetection struct{ Type string } `json:"turn_detection"`
				} `json:"input"`
				Output struct {
					Format struct{ Type string } `json:"format"`
				} `json:"output"`
			} `json:"audio"`
			Instructions string `json:"instructions"`
			Tools        []struct {
				Type       string `json:"type"`
				Name       string `json:"name"`
				Parameters struct {
					Properties struct {
						Option struct {
							Enum []string `json:"enum"`
						} `json:"option"`
						Reason json.RawMessage `json:"reason"`
					} `json:"properties"`
				} `json:"parameters"`
			} `json:"tools"`
			ToolChoice string `json:"tool_choice"`
		} `json:"session"`
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return err
	}
	ss := u.Session
	switch {
	case u.Type != "session.update":
		return fmt.Errorf("first event is %q", u.Type)
	case ss.Type != "realtime":
		return fmt.Errorf("session.type %q", ss.Type)
	case len(ss.OutputModalities) != 1 || ss.OutputModalities[0] != "audio":
		return fmt.Errorf("output_modalities %v", ss.OutputModalities)
	case ss.Audio.Input.Format.Type != "audio/pcmu" || ss.Audio.Output.Format.Type != "audio/pcmu":
		return fmt.Errorf("audio formats %q/%q", ss.Audio.Input.Format.Type, ss.Audio.Output.Format.Type)
	case ss.Audio.Input.TurnDetection.Type != "server_vad":
		return fmt.Errorf("turn_detection %q", ss.Audio.Input.TurnDetection.Type)
	case ss.Instructions == "":
		return fmt.Errorf("no instructions")
	case len(ss.Tools) != 1 || ss.Tools[0].Type != "function" || ss.Tools[0].Name != "propose_decision":
		return fmt.Errorf("tools: want one propose_decision function")
	case len(ss.Tools[0].Parameters.Properties.Option.Enum) == 0 || ss.Tools[0].Parameters.Properties.Reason == nil:
		return fmt.Errorf("propose_decision needs option (enum) and reason")
	case ss.ToolChoice != "auto":
		return fmt.Errorf("tool_choice %q", ss.ToolChoice)
	}
	return nil
}

type player struct {
	s    *Server
	conn *websocket.Conn
	in   <-chan Event
	mu   sync.Mutex
}

func (p *player) write(v any) bool {
	b, _ := json.Marshal(v)
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return p.conn.WriteMessage(websocket.TextMessage, b) == nil
}

// waitFor reads client events until one of type typ (false: the client left).
func (p *player) waitFor(typ string) bool {
	for ev := range p.in {
		if ev.Type == typ {
			return true
		}
	}
	return false
}

// drain keeps reading (recording) until the client leaves.
func (p *player) drain() {
	for range p.in {
	}
}

func (p *player) nextItem() string {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	p.s.item++
	return fmt.Sprintf("item_%d", p.s.item)
}

// audio sends n 20 ms deltas of the canary tone for item.
func (p *player) audio(item string, n int, beta bool) {
	typ := "response.output_audio.delta"
	if beta {
		typ = "response.audio.delta"
	}
	frame := base64.StdEncoding.EncodeToString(CanaryTone(160))
	for i := 0; i < n; i++ {
		p.write(map[string]any{"type": typ, "response_id": "resp", "item_id": item, "output_index": 0, "content_index": 0, "delta": frame})
		p.s.mu.Lock()
		p.s.audio += 160
		p.s.mu.Unlock()
	}
}

func (p *player) explain(beta bool, frames int) {
	item := p.nextItem()
	p.write(map[string]any{"type": "response.created", "response": map[string]any{"id": "resp"}})
	p.audio(item, frames, beta)
	p.write(map[string]any{"type": "response.output_audio_transcript.delta", "item_id": item, "delta": "This is Ony. " + TextCanary})
	p.write(map[string]any{"type": "response.output_audio.done", "item_id": item})
	p.write(map[string]any{"type": "response.done", "response": map[string]any{"id": "resp", "status": "completed"}})
}

func (p *player) propose(option string) {
	args, _ := json.Marshal(map[string]string{"option": option, "reason": "the callee said so " + TextCanary})
	p.write(map[string]any{"type": "response.created", "response": map[string]any{"id": "resp"}})
	p.write(map[string]any{"type": "response.function_call_arguments.done", "item_id": p.nextItem(), "call_id": "call_1", "name": "propose_decision", "arguments": string(args)})
	p.write(map[string]any{"type": "response.done", "response": map[string]any{"id": "resp", "status": "completed"}})
}

// interrupt plays 2 s of audio, then reports the callee speaking 300 ms later and expects the client
// to cancel and truncate at no more than it was sent.
func (p *player) interrupt() {
	item := p.nextItem()
	p.write(map[string]any{"type": "response.created", "response": map[string]any{"id": "resp"}})
	p.audio(item, 100, false)
	time.Sleep(300 * time.Millisecond)
	p.write(map[string]any{"type": "input_audio_buffer.speech_started", "item_id": "item_user", "audio_start_ms": 300})
	var cancelled, truncated bool
	deadline := time.After(3 * time.Second)
	for !(cancelled && truncated) {
		select {
		case ev, ok := <-p.in:
			if !ok {
				p.s.problem("client left before cancel and truncate")
				return
			}
			switch ev.Type {
			case "response.cancel":
				cancelled = true
			case "conversation.item.truncate":
				var tr struct {
					ItemID       string `json:"item_id"`
					ContentIndex *int   `json:"content_index"`
					AudioEndMS   *int64 `json:"audio_end_ms"`
				}
				_ = json.Unmarshal(ev.Raw, &tr)
				switch {
				case tr.ItemID != item:
					p.s.problem("truncate item %q, want %q", tr.ItemID, item)
				case tr.ContentIndex == nil || *tr.ContentIndex != 0:
					p.s.problem("truncate without content_index 0")
				case tr.AudioEndMS == nil || *tr.AudioEndMS < 0 || *tr.AudioEndMS > 2000:
					p.s.problem("truncate audio_end_ms out of range [0, 2000]")
				}
				truncated = true
			}
		case <-deadline:
			p.s.problem("no cancel and truncate after speech_started (cancel %v, truncate %v)", cancelled, truncated)
			return
		}
	}
	p.write(map[string]any{"type": "response.done", "response": map[string]any{"id": "resp", "status": "cancelled"}})
}

// CanaryTone is n bytes of a 1 kHz µ-law tone: audio the model "says", which must never be logged.
func CanaryTone(n int) []byte {
	out := make([]byte, n)
	for i := range out {
		v := 0.5 * math.Sin(2*math.Pi*1000*float64(i)/8000)
		out[i] = mediatest.EncodeULaw(int16(v * 32767))
	}
	return out
}
