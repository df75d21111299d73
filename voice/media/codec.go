// Package media bridges a telephony provider's bidirectional media websocket (Twilio, SignalWire,
// Telnyx, Plivo) to Go code: one tolerant codec, a 20 ms outbound pacer and the websocket Handler.
package media

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Flavor is which provider's dialect a stream speaks.
type Flavor int

// The providers. SignalWire speaks Twilio's dialect with UUID ids, bare stops and track-less dtmf;
// Telnyx speaks it in snake_case; Plivo has its own outbound verbs (playAudio, checkpoint, clearAudio).
const (
	Twilio Flavor = iota
	SignalWire
	Telnyx
	Plivo
)

func (f Flavor) String() string {
	switch f {
	case Twilio:
		return "twilio"
	case SignalWire:
		return "signalwire"
	case Telnyx:
		return "telnyx"
	case Plivo:
		return "plivo"
	}
	return "flavor(" + strconv.Itoa(int(f)) + ")"
}

// EventKind is what an inbound stream message says.
type EventKind int

// Zero is deliberately no kind, so a forgotten assignment never reads as Connected.
const (
	Connected EventKind = iota + 1
	Start
	Media
	DTMF
	Mark
	Stop
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Start:
		return "start"
	case Media:
		return "media"
	case DTMF:
		return "dtmf"
	case Mark:
		return "mark"
	case Stop:
		return "stop"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one decoded inbound message. Payload and Params come from the provider and may carry
// the callee's voice or a token: never log them.
type Event struct {
	Kind     EventKind
	StreamID string
	CallRef  string // Twilio/SignalWire callSid, Telnyx call_control_id, Plivo callId
	// Params are Twilio/SignalWire start.customParameters, Plivo's extra headers, or Telnyx's
	// client_state decoded from base64 (a JSON object or a URL query, e.g. "t=…").
	Params     map[string]string
	Payload    []byte // µ-law 8 kHz, decoded from base64 (Media)
	Seq        int64
	Chunk      int64
	Timestamp  int64 // ms, when given
	Digit      string
	Name       string // Mark (Plivo: the checkpoint's name)
	Encoding   string // Start; µ-law under any spelling reads "audio/x-mulaw"
	SampleRate int    // Start
}

// ErrUnknownEvent is returned for well-formed messages Ony has no use for (Plivo's clearedAudio,
// future events); callers skip them.
var ErrUnknownEvent = errors.New("media: unknown event")

// num accepts a JSON number or a string holding one: Twilio sends strings, Plivo numbers.
type num int64

func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil
		}
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = num(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return fmt.Errorf("media: bad number %q", s)
	}
	*n = num(f)
	return nil
}

type wireFormat struct {
	Encoding        string `json:"encoding"`
	SampleRate      num    `json:"sampleRate"`
	SampleRateSnake num    `json:"sample_rate"`
}

type wireStart struct {
	StreamSid        string          `json:"streamSid"`
	StreamID         string          `json:"streamId"`
	StreamIDSnake    string          `json:"stream_id"`
	CallSid          string          `json:"callSid"`
	CallID           string          `json:"callId"`
	CallControlID    string          `json:"call_control_id"`
	CustomParameters json.RawMessage `json:"customParameters"`
	CustomParamsSnk  json.RawMessage `json:"custom_parameters"`
	ExtraHeaders     json.RawMessage `json:"extra_headers"`
	ClientState      string          `json:"client_state"`
	MediaFormat      *wireFormat     `json:"mediaFormat"`
	MediaFormatSnake *wireFormat     `json:"media_format"`
}

type wireMedia struct {
	Chunk     num    `json:"chunk"`
	Timestamp num    `json:"timestamp"`
	Payload   string `json:"payload"`
}

type wireMsg struct {
	Event         string                  `json:"event"`
	Seq           num                     `json:"sequenceNumber"`
	SeqSnake      num                     `json:"sequence_number"`
	StreamSid     string                  `json:"streamSid"`
	StreamID      string                  `json:"streamId"`
	StreamIDSnake string                  `json:"stream_id"`
	Start         *wireStart              `json:"start"`
	Media         *wireMedia              `json:"media"`
	DTMF          *struct{ Digit string } `json:"dtmf"`
	Mark          *struct{ Name string }  `json:"mark"`
	Stop          *struct {
		CallSid       string `json:"callSid"`
		CallControlID string `json:"call_control_id"`
		CallID        string `json:"callId"`
	} `json:"stop"`
	Name         string          `json:"name"`
	ExtraHeaders json.RawMessage `json:"extra_headers"`
}

// Decode reads one inbound text message. It is tolerant of the dialects' differences (numbers as
// strings or numbers, snake_case, a bare stop, dtmf without a track) and strict about what Ony acts
// on: a DTMF digit must be one key, a payload valid base64.
func Decode(f Flavor, msg []byte) (Event, error) {
	var w wireMsg
	if err := json.Unmarshal(msg, &w); err != nil {
		return Event{}, fmt.Errorf("media: decode %s message: %w", f, err)
	}
	ev := Event{
		StreamID: first(w.StreamSid, w.StreamID, w.StreamIDSnake),
		Seq:      int64(w.Seq) + int64(w.SeqSnake),
	}
	switch w.Event {
	case "connected":
		ev.Kind = Connected
	case "start":
		ev.Kind = Start
		if w.Start == nil {
			return Event{}, errors.New("media: start without start")
		}
		s := w.Start
		ev.StreamID = first(ev.StreamID, s.StreamSid, s.StreamID, s.StreamIDSnake)
		ev.CallRef = first(s.CallSid, s.CallControlID, s.CallID)
		ev.Params = map[string]string{}
		for _, raw := range []json.RawMessage{s.CustomParameters, s.CustomParamsSnk, s.ExtraHeaders, w.ExtraHeaders} {
			if err := addParams(ev.Params, raw); err != nil {
				return Event{}, err
			}
		}
		if s.ClientState != "" {
			cs, err := decodeB64(s.ClientState)
			if err != nil {
				return Event{}, fmt.Errorf("media: client_state: %w", err)
			}
			addText(ev.Params, string(cs))
		}
		if mf := first2(s.MediaFormat, s.MediaFormatSnake); mf != nil {
			ev.Encoding = normEncoding(mf.Encoding)
			ev.SampleRate = int(mf.SampleRate) + int(mf.SampleRateSnake)
		}
	case "media":
		ev.Kind = Media
		if w.Media == nil {
			return Event{}, errors.New("media: media without media")
		}
		p, err := decodeB64(w.Media.Payload)
		if err != nil {
			return Event{}, fmt.Errorf("media: payload: %w", err)
		}
		ev.Payload, ev.Chunk, ev.Timestamp = p, int64(w.Media.Chunk), int64(w.Media.Timestamp)
	case "dtmf":
		ev.Kind = DTMF
		if w.DTMF == nil || !validDigit(w.DTMF.Digit) {
			return Event{}, errors.New("media: dtmf without a valid digit")
		}
		ev.Digit = w.DTMF.Digit
	case "mark":
		ev.Kind = Mark
		if w.Mark == nil {
			return Event{}, errors.New("media: mark without mark")
		}
		ev.Name = w.Mark.Name
	case "playedStream":
		// Plivo's answer to a checkpoint: the audio before it has played.
		ev.Kind, ev.Name = Mark, w.Name
	case "stop":
		ev.Kind = Stop
		if w.Stop != nil {
			ev.CallRef = first(w.Stop.CallSid, w.Stop.CallControlID, w.Stop.CallID)
		}
	default:
		return Event{}, ErrUnknownEvent
	}
	return ev, nil
}

func validDigit(d string) bool {
	return len(d) == 1 && strings.ContainsRune("0123456789*#ABCD", rune(d[0]))
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	return b, nil
}

// addParams merges a JSON object (string values; others are kept as their JSON text) or a JSON
// string holding an object or "k=v" pairs — the shapes Plivo's extra headers are seen in.
func addParams(dst map[string]string, raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	switch raw[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("media: parameters: %w", err)
		}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			dst[k] = s
		}
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("media: parameters: %w", err)
		}
		addText(dst, s)
	default:
		return errors.New("media: parameters are neither an object nor a string")
	}
	return nil
}

// addText reads a JSON object, else "k=v" pairs separated by & , or ; (URL-decoded).
func addText(dst map[string]string, s string) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") && addParams(dst, json.RawMessage(s)) == nil {
		return
	}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == '&' || r == ',' || r == ';' }) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if uk, err := url.QueryUnescape(strings.TrimSpace(k)); err == nil {
			k = uk
		}
		if uv, err := url.QueryUnescape(strings.TrimSpace(v)); err == nil {
			v = uv
		}
		if k != "" {
			dst[k] = v
		}
	}
}

func normEncoding(e string) string {
	l := strings.ToLower(strings.TrimSpace(e))
	if base, _, _ := strings.Cut(l, ";"); base == "pcmu" || base == "audio/x-mulaw" || base == "audio/pcmu" || base == "mulaw" {
		return "audio/x-mulaw"
	}
	return e
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func first2(a, b *wireFormat) *wireFormat {
	if a != nil {
		return a
	}
	return b
}

type outMedia struct {
	ContentType string `json:"contentType,omitempty"`
	SampleRate  int    `json:"sampleRate,omitempty"`
	Payload     string `json:"payload"`
}

type outMsg struct {
	Event     string    `json:"event"`
	StreamSid string    `json:"streamSid,omitempty"`
	StreamID  string    `json:"streamId,omitempty"`
	Media     *outMedia `json:"media,omitempty"`
	Mark      *struct {
		Name string `json:"name"`
	} `json:"mark,omitempty"`
	Name string `json:"name,omitempty"`
}

func encode(m outMsg) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // only strings and ints: cannot fail
	}
	return b
}

// withID puts the stream id where the flavor wants it (Telnyx needs none on outbound messages).
func withID(f Flavor, m outMsg, streamID string) outMsg {
	switch f {
	case Plivo:
		m.StreamID = streamID
	case Telnyx:
	default:
		m.StreamSid = streamID
	}
	return m
}

// EncodeMedia is one outbound audio message (µ-law 8 kHz).
func EncodeMedia(f Flavor, streamID string, ulaw []byte) []byte {
	p := base64.StdEncoding.EncodeToString(ulaw)
	if f == Plivo {
		return encode(outMsg{Event: "playAudio", Media: &outMedia{ContentType: "audio/x-mulaw", SampleRate: 8000, Payload: p}})
	}
	return encode(withID(f, outMsg{Event: "media", Media: &outMedia{Payload: p}}, streamID))
}

// EncodeMark asks the provider to say name back once the audio sent before it has played.
func EncodeMark(f Flavor, streamID, name string) []byte {
	if f == Plivo {
		return encode(outMsg{Event: "checkpoint", StreamID: streamID, Name: name})
	}
	m := outMsg{Event: "mark", Mark: &struct {
		Name string `json:"name"`
	}{name}}
	return encode(withID(f, m, streamID))
}

// EncodeClear drops the audio the provider has buffered but not yet played.
func EncodeClear(f Flavor, streamID string) []byte {
	if f == Plivo {
		return encode(outMsg{Event: "clearAudio", StreamID: streamID})
	}
	return encode(withID(f, outMsg{Event: "clear"}, streamID))
}
