package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/websocket"
)

// maxServerEvent bounds one realtime server message; audio deltas are a few KiB, so anything near
// this is garbage and ends the session (the keypad takes over).
const maxServerEvent = 1 << 20

// writeTimeout bounds one write to the model, so a stuck model cannot hold the call.
const writeTimeout = 5 * time.Second

// serverEvent is the part of a realtime server event the call logic uses. Audio is already decoded.
type serverEvent struct {
	Type      string
	ItemID    string
	Audio     []byte // response.output_audio.delta / response.audio.delta
	CallID    string // response.function_call_arguments.done
	Name      string
	Arguments string
	ErrCode   string // error
}

// wireEvent is the JSON shape of the server events we read.
type wireEvent struct {
	Type      string `json:"type"`
	ItemID    string `json:"item_id"`
	Delta     string `json:"delta"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Error     *struct {
		Type string `json:"type"`
		Code string `json:"code"`
	} `json:"error"`
}

// Server event types the call acts on; others are counted and ignored.
const (
	evAudioDelta     = "response.output_audio.delta"
	evAudioDeltaBeta = "response.audio.delta"
	evSpeechStarted  = "input_audio_buffer.speech_started"
	evFunctionCall   = "response.function_call_arguments.done"
	evResponseCreate = "response.created"
	evResponseDone   = "response.done"
	evError          = "error"
)

var errGarbage = errors.New("agent: malformed realtime event")

// decodeServerEvent parses one realtime server message. Anything that is not a JSON object with a
// type, or an audio delta that is not base64, is garbage: the model side is then not trusted.
func decodeServerEvent(msg []byte) (serverEvent, error) {
	var w wireEvent
	if err := json.Unmarshal(msg, &w); err != nil {
		return serverEvent{}, fmt.Errorf("%w: %v", errGarbage, err)
	}
	if w.Type == "" || len(w.Type) > 128 {
		return serverEvent{}, fmt.Errorf("%w: no type", errGarbage)
	}
	ev := serverEvent{Type: w.Type, ItemID: w.ItemID}
	switch w.Type {
	case evAudioDelta, evAudioDeltaBeta:
		b, err := base64.StdEncoding.DecodeString(w.Delta)
		if err != nil {
			return serverEvent{}, fmt.Errorf("%w: audio delta is not base64", errGarbage)
		}
		ev.Audio = b
	case evFunctionCall:
		if w.CallID == "" || w.Name == "" {
			return serverEvent{}, fmt.Errorf("%w: function call without call_id or name", errGarbage)
		}
		ev.CallID, ev.Name, ev.Arguments = w.CallID, w.Name, w.Arguments
	case evError:
		if w.Error != nil {
			ev.ErrCode = w.Error.Code
		}
	}
	return ev, nil
}

// realtime is one session with the model. Only the call loop writes; one goroutine reads.
type realtime struct {
	conn *websocket.Conn
}

func dialRealtime(ctx context.Context, cfg Config) (*realtime, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("agent: realtime URL: %w", err)
	}
	if cfg.Model != "" {
		q := u.Query()
		q.Set("model", cfg.Model)
		u.RawQuery = q.Encode()
	}
	d := cfg.Dialer
	if d == nil {
		d = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+cfg.APIKey)
	conn, resp, err := d.DialContext(ctx, u.String(), h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("agent: dial realtime: status %d: %w", resp.StatusCode, err)
		}
		return nil, fmt.Errorf("agent: dial realtime: %w", err)
	}
	conn.SetReadLimit(maxServerEvent)
	return &realtime{conn: conn}, nil
}

func (r *realtime) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("agent: encode client event: %w", err)
	}
	_ = r.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := r.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("agent: write to realtime: %w", err)
	}
	return nil
}

func (r *realtime) close() { _ = r.conn.Close() }

// read delivers decoded server events until the socket fails or ctx ends; its last value carries the
// error. It never blocks past ctx.
func (r *realtime) read(ctx context.Context, out chan<- serverResult) {
	for {
		_, msg, err := r.conn.ReadMessage()
		var res serverResult
		if err != nil {
			res.err = fmt.Errorf("agent: realtime read: %w", err)
		} else {
			res.ev, res.err = decodeServerEvent(msg)
		}
		select {
		case out <- res:
		case <-ctx.Done():
			return
		}
		if res.err != nil {
			return
		}
	}
}

type serverResult struct {
	ev  serverEvent
	err error
}

// Client events (GA shapes).

type sessionUpdate struct {
	Type    string  `json:"type"`
	Session session `json:"session"`
}

type session struct {
	Type             string   `json:"type"`
	OutputModalities []string `json:"output_modalities"`
	Audio            struct {
		Input struct {
			Format        format `json:"format"`
			TurnDetection struct {
				Type string `json:"type"`
			} `json:"turn_detection"`
		} `json:"input"`
		Output struct {
			Format format `json:"format"`
			Voice  string `json:"voice,omitempty"`
		} `json:"output"`
	} `json:"audio"`
	Instructions string `json:"instructions"`
	Tools        []tool `json:"tools"`
	ToolChoice   string `json:"tool_choice"`
}

type format struct {
	Type string `json:"type"`
}

type tool struct {
	Type        string         `json:"type"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Parameters  map[string]any `json:"parameters"`
}

// ToolName is the one tool the model gets: it can propose a decision, never make one.
const ToolName = "propose_decision"

func newSessionUpdate(voice, instructions string, options []string) sessionUpdate {
	var s sessionUpdate
	s.Type = "session.update"
	s.Session.Type = "realtime"
	s.Session.OutputModalities = []string{"audio"}
	s.Session.Audio.Input.Format.Type = "audio/pcmu"
	s.Session.Audio.Input.TurnDetection.Type = "server_vad"
	s.Session.Audio.Output.Format.Type = "audio/pcmu"
	s.Session.Audio.Output.Voice = voice
	s.Session.Instructions = instructions
	s.Session.ToolChoice = "auto"
	s.Session.Tools = []tool{{
		Type:        "function",
		Name:        ToolName,
		Description: "Propose one of the handoff's options once the callee has said what they want. Ony then asks them to confirm on the keypad; this does not decide anything.",
		Parameters: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"option": map[string]any{"type": "string", "enum": options, "description": "the option id the callee chose"},
				"reason": map[string]any{"type": "string", "description": "a short reason, in the callee's words"},
			},
			"required":             []string{"option", "reason"},
			"additionalProperties": false,
		},
	}}
	return s
}

type typed struct {
	Type string `json:"type"`
}

type appendAudio struct {
	Type  string `json:"type"`
	Audio string `json:"audio"`
}

type truncate struct {
	Type         string `json:"type"`
	ItemID       string `json:"item_id"`
	ContentIndex int    `json:"content_index"`
	AudioEndMS   int64  `json:"audio_end_ms"`
}

type itemCreate struct {
	Type string `json:"type"`
	Item item   `json:"item"`
}

type item struct {
	Type    string    `json:"type"`
	CallID  string    `json:"call_id,omitempty"`
	Output  string    `json:"output,omitempty"`
	Role    string    `json:"role,omitempty"`
	Content []content `json:"content,omitempty"`
}

type content struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func functionOutput(callID, output string) itemCreate {
	return itemCreate{Type: "conversation.item.create", Item: item{Type: "function_call_output", CallID: callID, Output: output}}
}

// systemNote tells the model what Ony did (a keypad confirm, a decision): a system message, so the
// model does not take it for the callee's words.
func systemNote(text string) itemCreate {
	return itemCreate{Type: "conversation.item.create", Item: item{Type: "message", Role: "system", Content: []content{{Type: "input_text", Text: text}}}}
}
