// Package telnyxtest is a strict in-process fake of the Telnyx API (messages, dials, call commands)
// and a driver that plays Telnyx's side of Ony's webhooks, with good or broken Ed25519 signatures.
package telnyxtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testhttp"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Message is a text Ony sent.
type Message struct {
	ID, From, To, Text, WebhookURL string
}

// Call is a call Ony placed. The Stream fields are its media stream, set in voice-agent mode.
type Call struct {
	ID, ConnectionID, From, To, WebhookURL, ClientState, AMD string
	TimeoutSecs                                              int
	StreamURL, StreamTrack, StreamMode, StreamCodec          string
}

// Command is a Call Control command Ony posted to a call.
type Command struct {
	CallID, Action               string
	Payload, Voice, Language     string
	MinimumDigits, MaximumDigits int
	ValidDigits, ClientState     string
	CommandID                    string
}

// Server is the fake API. It refuses what Telnyx would refuse: a wrong key, an unknown path or field,
// a missing required field, a command to a call it never placed.
type Server struct {
	t   testing.TB
	key string
	srv *httptest.Server

	mu       sync.Mutex
	messages []Message
	calls    []Call
	commands []Command
	seenCmd  map[string]bool
	state    map[string]string // call id → last client_state set
	failN    int
	refused  map[string]bool
	failCode int
	requests int
}

// New starts a fake that accepts apiKey, closed when the test ends.
func New(t testing.TB, apiKey string) *Server {
	s := &Server{t: t, key: apiKey, seenCmd: map[string]bool{}, state: map[string]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the base to configure as APIURL.
func (s *Server) URL() string { return s.srv.URL }

// Fail makes the next n requests fail with status (429 with Retry-After: 1, or a 5xx).
func (s *Server) Fail(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode = n, status
}

// Refuse makes texts and calls to number fail as Telnyx fails an unreachable destination: 422,
// quoting the number in the error detail.
func (s *Server) Refuse(number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refused == nil {
		s.refused = map[string]bool{}
	}
	s.refused[number] = true
}

func (s *Server) isRefused(number string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused[number]
}

// Messages, Calls and Commands return what was accepted, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands...)
}

// Requests counts every request that reached the fake, accepted or not.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ClientState is the client_state Telnyx would echo on the call's next events: the last one a
// dial or command set.
func (s *Server) ClientState(callID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state[callID]
}

func writeErr(w http.ResponseWriter, status int, code, title, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "title": title, "detail": detail}}})
}

func writeData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
}

// decode reads a JSON body strictly: unknown fields are refused, as a typo would silently be lost.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if r.Header.Get("Content-Type") != "application/json" {
		writeErr(w, 415, "10015", "Bad Content-Type", "content type must be application/json")
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, 422, "10002", "Invalid body", err.Error())
		return false
	}
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	if s.failN > 0 {
		s.failN--
		code := s.failCode
		s.mu.Unlock()
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeErr(w, code, "10011", "Service unavailable", "try again later")
		return
	}
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+s.key {
		writeErr(w, 401, "10009", "Authentication failed", "The API key is missing or invalid")
		return
	}
	if r.Method != http.MethodPost {
		writeErr(w, 405, "10405", "Method not allowed", r.Method)
		return
	}
	switch {
	case r.URL.Path == "/v2/messages":
		s.message(w, r)
	case r.URL.Path == "/v2/calls":
		s.dial(w, r)
	case strings.HasPrefix(r.URL.Path, "/v2/calls/"):
		s.command(w, r)
	default:
		writeErr(w, 404, "10404", "Not found", "no such resource")
	}
}

func (s *Server) message(w http.ResponseWriter, r *http.Request) {
	var req struct {
		From       string `json:"from"`
		To         string `json:"to"`
		Text       string `json:"text"`
		WebhookURL string `json:"webhook_url"`
	}
	if !decode(w, r, &req) {
		return
	}
	if !e164.MatchString(req.From) || !e164.MatchString(req.To) || req.Text == "" {
		writeErr(w, 422, "40310", "Invalid 'to' address", "to, from and text are required")
		return
	}
	if s.isRefused(req.To) {
		writeErr(w, 422, "40310", "Invalid 'to' address", "The destination "+req.To+" is not reachable")
		return
	}
	s.mu.Lock()
	m := Message{ID: fmt.Sprintf("msg-%d", len(s.messages)+1), From: req.From, To: req.To, Text: req.Text, WebhookURL: req.WebhookURL}
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	writeData(w, map[string]any{"id": m.ID, "record_type": "message", "direction": "outbound", "text": m.Text,
		"to": []map[string]string{{"phone_number": m.To, "status": "queued"}}})
}

func (s *Server) dial(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ConnectionID string `json:"connection_id"`
		To           string `json:"to"`
		From         string `json:"from"`
		WebhookURL   string `json:"webhook_url"`
		ClientState  string `json:"client_state"`
		TimeoutSecs  int    `json:"timeout_secs"`
		AMD          string `json:"answering_machine_detection"`
		StreamURL    string `json:"stream_url"`
		StreamTrack  string `json:"stream_track"`
		StreamMode   string `json:"stream_bidirectional_mode"`
		StreamCodec  string `json:"stream_bidirectional_codec"`
	}
	if !decode(w, r, &req) {
		return
	}
	if msg := checkStream(req.StreamURL, req.StreamTrack, req.StreamMode, req.StreamCodec); msg != "" {
		writeErr(w, 422, "10032", "Invalid stream", msg)
		return
	}
	if req.ConnectionID == "" || !e164.MatchString(req.From) || !e164.MatchString(req.To) || req.WebhookURL == "" {
		writeErr(w, 422, "10032", "Invalid dial", "connection_id, to, from and webhook_url are required")
		return
	}
	if req.TimeoutSecs < 5 || req.TimeoutSecs > 600 {
		writeErr(w, 422, "10032", "Invalid timeout_secs", "timeout_secs must be 5 to 600")
		return
	}
	if s.isRefused(req.To) {
		writeErr(w, 422, "10032", "Invalid destination", "The destination "+req.To+" is not reachable")
		return
	}
	if _, err := base64.StdEncoding.DecodeString(req.ClientState); err != nil {
		writeErr(w, 422, "90015", "Invalid client_state", "client_state must be base64")
		return
	}
	switch req.AMD {
	case "", "disabled", "detect", "detect_beep", "detect_words", "greeting_end", "premium":
	default:
		writeErr(w, 422, "10032", "Invalid answering_machine_detection", req.AMD)
		return
	}
	s.mu.Lock()
	c := Call{ID: fmt.Sprintf("v3:call-%d", len(s.calls)+1), ConnectionID: req.ConnectionID, From: req.From, To: req.To,
		WebhookURL: req.WebhookURL, ClientState: req.ClientState, AMD: req.AMD, TimeoutSecs: req.TimeoutSecs,
		StreamURL: req.StreamURL, StreamTrack: req.StreamTrack, StreamMode: req.StreamMode, StreamCodec: req.StreamCodec}
	s.calls = append(s.calls, c)
	s.state[c.ID] = c.ClientState
	s.mu.Unlock()
	writeData(w, map[string]any{"call_control_id": c.ID, "call_leg_id": "leg-" + c.ID, "call_session_id": "sess-" + c.ID, "record_type": "call", "is_alive": true})
}

// checkStream refuses stream fields Telnyx would: a stream URL that is not a websocket one, a
// track, bidirectional mode or codec it does not know, or stream options without a stream URL.
func checkStream(u, track, mode, codec string) string {
	if u == "" {
		if track != "" || mode != "" || codec != "" {
			return "stream options need a stream_url"
		}
		return ""
	}
	if !strings.HasPrefix(u, "wss://") && !strings.HasPrefix(u, "ws://") {
		return "stream_url must be a ws:// or wss:// URL"
	}
	switch track {
	case "", "inbound_track", "outbound_track", "both_tracks":
	default:
		return "stream_track must be inbound_track, outbound_track or both_tracks"
	}
	switch mode {
	case "", "mp3", "rtp":
	default:
		return "stream_bidirectional_mode must be mp3 or rtp"
	}
	switch codec {
	case "", "PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16":
	default:
		return "stream_bidirectional_codec is not a supported codec"
	}
	if codec != "" && mode != "rtp" {
		return "stream_bidirectional_codec applies to rtp mode only"
	}
	return ""
}

func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v2/calls/")
	callID, action, ok := strings.Cut(rest, "/actions/")
	if !ok {
		writeErr(w, 404, "10404", "Not found", "no such resource")
		return
	}
	s.mu.Lock()
	_, known := s.state[callID]
	s.mu.Unlock()
	if !known {
		writeErr(w, 422, "90018", "Call has already ended", "no call with this call_control_id")
		return
	}
	var req struct {
		Payload       string `json:"payload"`
		Voice         string `json:"voice"`
		Language      string `json:"language"`
		MinimumDigits int    `json:"minimum_digits"`
		MaximumDigits int    `json:"maximum_digits"`
		ValidDigits   string `json:"valid_digits"`
		ClientState   string `json:"client_state"`
		CommandID     string `json:"command_id"`
		StreamURL     string `json:"stream_url"`
		StreamTrack   string `json:"stream_track"`
		StreamMode    string `json:"stream_bidirectional_mode"`
		StreamCodec   string `json:"stream_bidirectional_codec"`
	}
	if !decode(w, r, &req) {
		return
	}
	if action != "streaming_start" && (req.StreamURL != "" || req.StreamTrack != "" || req.StreamMode != "" || req.StreamCodec != "") {
		writeErr(w, 422, "10015", "Invalid parameter", "stream fields belong to streaming_start")
		return
	}
	if req.ClientState != "" {
		if _, err := base64.StdEncoding.DecodeString(req.ClientState); err != nil {
			writeErr(w, 422, "90015", "Invalid client_state", "client_state must be base64")
			return
		}
	}
	switch action {
	case "streaming_start":
		if req.StreamURL == "" {
			writeErr(w, 422, "10015", "Invalid parameter", "stream_url is required")
			return
		}
		if msg := checkStream(req.StreamURL, req.StreamTrack, req.StreamMode, req.StreamCodec); msg != "" {
			writeErr(w, 422, "10015", "Invalid parameter", msg)
			return
		}
		s.mu.Lock()
		for i := range s.calls {
			if s.calls[i].ID == callID {
				s.calls[i].StreamURL, s.calls[i].StreamTrack, s.calls[i].StreamMode, s.calls[i].StreamCodec =
					req.StreamURL, req.StreamTrack, req.StreamMode, req.StreamCodec
			}
		}
		s.mu.Unlock()
	case "speak":
		if req.Payload == "" || req.Voice == "" || req.MinimumDigits != 0 || req.MaximumDigits != 0 {
			writeErr(w, 422, "90020", "Invalid speak", "payload and voice are required, digits are not speak's")
			return
		}
	case "gather_using_speak":
		if req.Payload == "" || req.Voice == "" || req.MinimumDigits < 1 || req.MaximumDigits < req.MinimumDigits || req.MaximumDigits > 128 {
			writeErr(w, 422, "90020", "Invalid gather", "payload, voice and 1 <= minimum_digits <= maximum_digits are required")
			return
		}
	case "hangup":
		if req.Payload != "" || req.Voice != "" || req.MinimumDigits != 0 {
			writeErr(w, 422, "90020", "Invalid hangup", "hangup takes client_state and command_id only")
			return
		}
	default:
		writeErr(w, 404, "10404", "Not found", "no such action")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.CommandID != "" && s.seenCmd[callID+"|"+req.CommandID] {
		writeData(w, map[string]string{"result": "ok"}) // Telnyx ignores a repeated command_id
		return
	}
	s.seenCmd[callID+"|"+req.CommandID] = true
	s.commands = append(s.commands, Command{CallID: callID, Action: action, Payload: req.Payload, Voice: req.Voice, Language: req.Language,
		MinimumDigits: req.MinimumDigits, MaximumDigits: req.MaximumDigits, ValidDigits: req.ValidDigits, ClientState: req.ClientState, CommandID: req.CommandID})
	if req.ClientState != "" {
		s.state[callID] = req.ClientState
	}
	writeData(w, map[string]string{"result": "ok"})
}

// Driver plays Telnyx's side of Ony's webhooks: it builds events and posts them signed with its key.
type Driver struct {
	Private ed25519.PrivateKey
	// PublicKey is base64 of the public key, to configure as Config.PublicKey.
	PublicKey string
	// Clock stamps the signatures (default time.Now).
	Clock func() time.Time

	mu sync.Mutex
	n  int
}

// NewDriver makes a driver with a fresh key pair.
func NewDriver(t testing.TB) *Driver {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Driver{Private: priv, PublicKey: base64.StdEncoding.EncodeToString(pub), Clock: time.Now}
}

// Event builds a webhook body of eventType with payload, under a new event id.
func (d *Driver) Event(eventType string, payload any) []byte {
	d.mu.Lock()
	d.n++
	id := fmt.Sprintf("evt-%04d", d.n)
	d.mu.Unlock()
	b, err := json.Marshal(map[string]any{"data": map[string]any{"record_type": "event", "id": id, "event_type": eventType,
		"occurred_at": d.Clock().UTC().Format(time.RFC3339Nano), "payload": payload}, "meta": map[string]any{"attempt": 1, "delivered_to": "ony"}})
	if err != nil {
		panic(err)
	}
	return b
}

// callPayload is what every Call Control event payload carries.
func callPayload(c Call, clientState string) map[string]any {
	return map[string]any{"call_control_id": c.ID, "call_leg_id": "leg-" + c.ID, "call_session_id": "sess-" + c.ID,
		"connection_id": c.ConnectionID, "client_state": clientState, "from": c.From, "to": c.To, "direction": "outgoing", "state": "answered"}
}

// Answered, MachineDetected, GatherEnded, SpeakEnded and Hangup are the call's events, echoing
// clientState (Server.ClientState: the one Ony last set).
func (d *Driver) Answered(c Call, clientState string) []byte {
	return d.Event("call.answered", callPayload(c, clientState))
}

func (d *Driver) MachineDetected(c Call, clientState, result string) []byte {
	p := callPayload(c, clientState)
	p["result"] = result
	return d.Event("call.machine.detection.ended", p)
}

func (d *Driver) GatherEnded(c Call, clientState, digits, status string) []byte {
	p := callPayload(c, clientState)
	p["digits"], p["status"] = digits, status
	return d.Event("call.gather.ended", p)
}

func (d *Driver) SpeakEnded(c Call, clientState string) []byte {
	return d.Event("call.speak.ended", callPayload(c, clientState))
}

func (d *Driver) Hangup(c Call, clientState, cause string) []byte {
	p := callPayload(c, clientState)
	p["hangup_cause"], p["hangup_source"], p["sip_hangup_cause"] = cause, "callee", "200"
	return d.Event("call.hangup", p)
}

// StreamingStarted, StreamingStopped and StreamingFailed are the call's media stream events
// (Telnyx sends streaming.stopped when the stream ends and the call goes on).
func (d *Driver) StreamingStarted(c Call, clientState string) []byte {
	return d.Event("streaming.started", streamPayload(c, clientState))
}

func (d *Driver) StreamingStopped(c Call, clientState string) []byte {
	return d.Event("streaming.stopped", streamPayload(c, clientState))
}

func (d *Driver) StreamingFailed(c Call, clientState, reason string) []byte {
	p := streamPayload(c, clientState)
	p["failure_reason"] = reason
	return d.Event("streaming.failed", p)
}

func streamPayload(c Call, clientState string) map[string]any {
	p := callPayload(c, clientState)
	p["stream_url"], p["stream_id"] = c.StreamURL, "stream-"+c.ID
	delete(p, "direction")
	delete(p, "state")
	return p
}

// MessageReceived is an inbound text from → to.
func (d *Driver) MessageReceived(id, from, to, text string) []byte {
	return d.Event("message.received", map[string]any{"id": id, "record_type": "message", "direction": "inbound", "type": "SMS",
		"from": map[string]any{"phone_number": from, "carrier": "T-Mobile", "line_type": "Wireless"},
		"to":   []map[string]any{{"phone_number": to, "status": "webhook_delivered"}}, "text": text, "encoding": "GSM-7", "parts": 1})
}

// MessageFinalized is the delivery report of a text Ony sent: status delivered, delivery_failed,
// sending_failed or delivery_unconfirmed.
func (d *Driver) MessageFinalized(m Message, status string) []byte {
	return d.Event("message.finalized", map[string]any{"id": m.ID, "record_type": "message", "direction": "outbound", "type": "SMS",
		"from": map[string]any{"phone_number": m.From}, "to": []map[string]any{{"phone_number": m.To, "status": status}}, "text": m.Text})
}

// Sig is how a post is signed.
type Sig int

const (
	Good        Sig = iota
	Missing         // no signature headers
	WrongKey        // signed with another key
	Stale           // signed 6 minutes ago
	Future          // stamped 6 minutes ahead
	Tampered        // signed, then the body changed
	NoTimestamp     // signature without its timestamp header
)

// Sign returns the signature headers for body at ts.
func (d *Driver) Sign(body []byte, ts time.Time) (sig, timestamp string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	msg := append([]byte(timestamp+"|"), body...)
	return base64.StdEncoding.EncodeToString(ed25519.Sign(d.Private, msg)), timestamp
}

// Post posts body to url as Telnyx would, signed as how says, and returns the status code.
func (d *Driver) Post(t testing.TB, url string, body []byte, how Sig) int {
	t.Helper()
	ts := d.Clock()
	key := d.Private
	switch how {
	case Stale:
		ts = ts.Add(-6 * time.Minute)
	case Future:
		ts = ts.Add(6 * time.Minute)
	case WrongKey:
		_, other, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = other
	}
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, append([]byte(timestamp+"|"), body...)))
	if how == Tampered {
		body = bytes.Replace(body, []byte(`"event_type":"`), []byte(`"event_type": "`), 1)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "telnyx-webhooks")
	if how != Missing {
		req.Header.Set("telnyx-signature-ed25519", sig)
		if how != NoTimestamp {
			req.Header.Set("telnyx-timestamp", timestamp)
		}
	}
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
