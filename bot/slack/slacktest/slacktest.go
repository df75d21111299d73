// Package slacktest is an in-process fake of the Slack Web API that Ony's Slack channel calls, strict
// about auth, paths and fields, and a driver that plays Slack's side of /hooks/slack/ with signatures.
package slacktest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/ony-ai/ony/internal/testhttp"
)

// Message is one chat.postMessage the fake accepted, as it now stands (chat.update rewrites it).
type Message struct {
	// Channel is what the caller asked for (a member id, #name or channel id); ChannelID is where the
	// fake put it (a D… DM for a member id).
	Channel, ChannelID, TS string
	Text                   string
	// Blocks is the raw blocks JSON; Parsed is it decoded by slack-go.
	Blocks string
	Parsed slack.Blocks
	// At is when the fake accepted the post (benchmarks time delivery by it); updates keep it.
	At time.Time
}

// Button is one button of a message's actions blocks.
type Button struct {
	ActionID, Text, Value, URL, Style string
}

// Buttons lists the message's buttons in order.
func (m Message) Buttons() []Button {
	var out []Button
	for _, b := range m.Parsed.BlockSet {
		ab, ok := b.(*slack.ActionBlock)
		if !ok || ab.Elements == nil {
			continue
		}
		for _, e := range ab.Elements.ElementSet {
			if be, ok := e.(*slack.ButtonBlockElement); ok {
				btn := Button{ActionID: be.ActionID, Value: be.Value, URL: be.URL, Style: string(be.Style)}
				if be.Text != nil {
					btn.Text = be.Text.Text
				}
				out = append(out, btn)
			}
		}
	}
	return out
}

// BlockText joins the text of the message's header, section and context blocks, one per line, as
// Slack receives it (mrkdwn still escaped).
func (m Message) BlockText() string {
	var out []string
	for _, b := range m.Parsed.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			out = append(out, b.Text.Text)
		case *slack.SectionBlock:
			out = append(out, b.Text.Text)
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*slack.TextBlockObject); ok {
					out = append(out, t.Text)
				}
			}
		}
	}
	return strings.Join(out, "\n")
}

// Response is one JSON post to a response_url the fake handed out.
type Response struct {
	Path            string
	ResponseType    string `json:"response_type"`
	ReplaceOriginal bool   `json:"replace_original"`
	Text            string `json:"text"`
}

// Server is the fake. Every method is safe for concurrent use.
type Server struct {
	token string
	srv   *httptest.Server

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every recorded change
	posted    []Message
	updates   []Message
	responses []Response
	users     map[string]string
	channels  map[string]string
	limited   int
	retry     int
	seq       int
	calls     map[string]int

	appToken string
	queue    [][]byte
	acks     []Ack
	conns    map[*websocket.Conn]bool
	opened   int
	envSeq   int
	sent     map[string][]byte
}

// New starts a fake that accepts botToken only; it stops when the test ends.
func New(t testing.TB, botToken string) *Server {
	t.Helper()
	s := &Server{token: botToken, changed: make(chan struct{}), users: map[string]string{},
		channels: map[string]string{}, calls: map[string]int{}, conns: map[*websocket.Conn]bool{}, sent: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.api)
	mux.HandleFunc("POST /respond/{id}", s.respond)
	mux.HandleFunc("GET /link/", s.socket)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the Web API base to give slack.Config.APIURL; it ends in "/api/".
func (s *Server) URL() string { return s.srv.URL + "/api/" }

// ResponseURL is a response_url served by the fake, for a driven interaction or command.
func (s *Server) ResponseURL() string {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	return fmt.Sprintf("%s/respond/%d", s.srv.URL, n)
}

// AddUser makes users.lookupByEmail find id for email.
func (s *Server) AddUser(email, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[strings.ToLower(email)] = id
}

// RateLimit makes the next n Web API calls answer 429 with Retry-After: retryAfter seconds.
func (s *Server) RateLimit(n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited, s.retry = n, retryAfter
}

// Calls is how many requests reached method (rate-limited ones included).
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Posted returns the accepted messages, as they now stand.
func (s *Server) Posted() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.posted...)
}

// Updated returns every accepted chat.update, in order.
func (s *Server) Updated() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.updates...)
}

// Responses returns every post to a response_url, in order.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.responses...)
}

// WaitPosted waits until at least n messages were posted.
func (s *Server) WaitPosted(ctx context.Context, n int) ([]Message, error) {
	return wait(ctx, s, func() []Message { return s.posted }, n)
}

// WaitUpdated waits until at least n updates were accepted.
func (s *Server) WaitUpdated(ctx context.Context, n int) ([]Message, error) {
	return wait(ctx, s, func() []Message { return s.updates }, n)
}

// WaitResponded waits until at least n posts reached a response_url.
func (s *Server) WaitResponded(ctx context.Context, n int) ([]Response, error) {
	return wait(ctx, s, func() []Response { return s.responses }, n)
}

func wait[T any](ctx context.Context, s *Server, list func() []T, n int) ([]T, error) {
	for {
		s.mu.Lock()
		got := append([]T(nil), list()...)
		ch := s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("slacktest: have %d of %d: %w", len(got), n, ctx.Err())
		case <-ch:
		}
	}
}

// record runs f under the lock and wakes waiters.
func (s *Server) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

var (
	memberRE  = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)
	channelRE = regexp.MustCompile(`^(#[^\s#,]{1,80}|[CGD][A-Z0-9]{6,20})$`)
)

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string) { reply(w, map[string]any{"ok": false, "error": code}) }

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	s.mu.Lock()
	s.calls[method]++
	if s.limited > 0 {
		s.limited--
		retry := s.retry
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		w.WriteHeader(http.StatusTooManyRequests)
		fail(w, "ratelimited")
		return
	}
	s.mu.Unlock()
	if method == "apps.connections.open" {
		s.open(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		fail(w, "invalid_method")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		fail(w, "invalid_auth")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		fail(w, "invalid_form_data")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		fail(w, "invalid_form_data")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(w, "invalid_form_data")
		return
	}
	// Stricter than Slack: the token belongs in the header, never in a body someone may log.
	if form.Has("token") {
		fail(w, "token_in_body")
		return
	}
	switch method {
	case "chat.postMessage":
		s.postMessage(w, form)
	case "chat.update":
		s.update(w, form)
	case "users.lookupByEmail":
		s.lookup(w, form)
	default:
		w.WriteHeader(http.StatusNotFound)
		fail(w, "unknown_method")
	}
}

// checkBlocks decodes blocks the way Slack would refuse them: bad JSON, unknown shapes, Block Kit
// limits, duplicate action ids.
func checkBlocks(raw string) (slack.Blocks, string) {
	var bs slack.Blocks
	if raw == "" {
		return bs, ""
	}
	if err := json.Unmarshal([]byte(raw), &bs); err != nil {
		return bs, "invalid_blocks"
	}
	ids := map[string]bool{}
	for _, b := range bs.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			if b.Text == nil || b.Text.Type != slack.PlainTextType || len([]rune(b.Text.Text)) > 150 {
				return bs, "invalid_blocks"
			}
		case *slack.SectionBlock:
			if b.Text == nil || len([]rune(b.Text.Text)) > 3000 {
				return bs, "invalid_blocks"
			}
		case *slack.ContextBlock:
		case *slack.ActionBlock:
			if b.Elements == nil || len(b.Elements.ElementSet) == 0 || len(b.Elements.ElementSet) > 25 {
				return bs, "invalid_blocks"
			}
			for _, e := range b.Elements.ElementSet {
				be, ok := e.(*slack.ButtonBlockElement)
				if !ok || be.Text == nil || be.Text.Type != slack.PlainTextType || len([]rune(be.Text.Text)) > 75 ||
					len(be.Value) > 2000 || len(be.URL) > 3000 || be.ActionID == "" || ids[be.ActionID] {
					return bs, "invalid_blocks"
				}
				ids[be.ActionID] = true
			}
		default:
			return bs, "invalid_blocks"
		}
	}
	return bs, ""
}

func (s *Server) postMessage(w http.ResponseWriter, form url.Values) {
	ch := form.Get("channel")
	if !memberRE.MatchString(ch) && !channelRE.MatchString(ch) {
		fail(w, "channel_not_found")
		return
	}
	if form.Get("text") == "" && form.Get("blocks") == "" {
		fail(w, "no_text")
		return
	}
	blocks, code := checkBlocks(form.Get("blocks"))
	if code != "" {
		fail(w, code)
		return
	}
	var m Message
	s.record(func() {
		s.seq++
		m = Message{Channel: ch, ChannelID: s.resolve(ch), TS: fmt.Sprintf("1700000000.%06d", s.seq),
			Text: form.Get("text"), Blocks: form.Get("blocks"), Parsed: blocks, At: time.Now()}
		s.posted = append(s.posted, m)
	})
	reply(w, map[string]any{"ok": true, "channel": m.ChannelID, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS}})
}

// resolve names the conversation a channel argument lands in; the caller holds the lock.
func (s *Server) resolve(ch string) string {
	switch {
	case strings.HasPrefix(ch, "#"):
		if id, ok := s.channels[ch]; ok {
			return id
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(ch))
		id := fmt.Sprintf("C%08X", h.Sum32())
		s.channels[ch] = id
		return id
	case memberRE.MatchString(ch):
		return "D" + ch[1:]
	}
	return ch
}

func (s *Server) update(w http.ResponseWriter, form url.Values) {
	ch, ts := form.Get("channel"), form.Get("ts")
	if ch == "" {
		fail(w, "channel_not_found")
		return
	}
	if ts == "" {
		fail(w, "message_not_found")
		return
	}
	if form.Get("text") == "" && form.Get("blocks") == "" {
		fail(w, "no_text")
		return
	}
	blocks, code := checkBlocks(form.Get("blocks"))
	if code != "" {
		fail(w, code)
		return
	}
	found := false
	s.record(func() {
		for i, m := range s.posted {
			if m.ChannelID == ch && m.TS == ts {
				m.Text, m.Blocks, m.Parsed = form.Get("text"), form.Get("blocks"), blocks
				s.posted[i] = m
				s.updates = append(s.updates, m)
				found = true
			}
		}
	})
	if !found {
		fail(w, "message_not_found")
		return
	}
	reply(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": form.Get("text")})
}

func (s *Server) lookup(w http.ResponseWriter, form url.Values) {
	email := form.Get("email")
	if email == "" {
		fail(w, "invalid_arguments")
		return
	}
	s.mu.Lock()
	id, ok := s.users[strings.ToLower(email)]
	s.mu.Unlock()
	if !ok {
		fail(w, "users_not_found")
		return
	}
	reply(w, map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}})
}

func (s *Server) respond(w http.ResponseWriter, r *http.Request) {
	// A response_url is its own credential: a token sent along would be one leaked to whoever holds it.
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "response_url takes no token", http.StatusBadRequest)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, "json only", http.StatusBadRequest)
		return
	}
	var resp Response
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil || resp.Text == "" {
		http.Error(w, "bad response", http.StatusBadRequest)
		return
	}
	resp.Path = r.URL.Path
	s.record(func() { s.responses = append(s.responses, resp) })
	_, _ = io.WriteString(w, "ok")
}

// Sign is Slack's v0 signature of body at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "v0:%d:", ts.Unix())
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// Option changes how a driven request is signed or sent.
type Option func(*request)

type request struct {
	at       time.Time
	sign     bool
	forge    bool
	headers  http.Header
	secret   string
	override string
}

// At signs with timestamp at (a stale one is refused).
func At(at time.Time) Option { return func(r *request) { r.at = at } }

// Unsigned sends no signature headers.
func Unsigned() Option { return func(r *request) { r.sign = false } }

// Forged signs with the wrong secret.
func Forged() Option { return func(r *request) { r.forge = true } }

// Header adds a header (X-Slack-Retry-Num: 1, say).
func Header(k, v string) Option { return func(r *request) { r.headers.Add(k, v) } }

// Signature sends sig as X-Slack-Signature instead of the computed one.
func Signature(sig string) Option { return func(r *request) { r.override = sig } }

// NewRequest builds a signed form POST of body to target, as Slack sends it.
func NewRequest(target, secret string, body []byte, opts ...Option) *http.Request {
	rq := &request{at: time.Now(), sign: true, headers: http.Header{}, secret: secret}
	for _, o := range opts {
		o(rq)
	}
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	if rq.sign {
		key := rq.secret
		if rq.forge {
			key = "not-" + key
		}
		req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(rq.at.Unix(), 10))
		req.Header.Set("X-Slack-Signature", Sign(key, rq.at, body))
		if rq.override != "" {
			req.Header.Set("X-Slack-Signature", rq.override)
		}
	}
	for k, vs := range rq.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

// Post sends a signed form POST of body to target over the network and returns the response, its
// body already read into memory.
func Post(t testing.TB, target, secret string, body []byte, opts ...Option) *http.Response {
	t.Helper()
	req := NewRequest(target, secret, body, opts...)
	req.RequestURI = ""
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := testhttp.Client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("slacktest: post: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("slacktest: read answer: %v", err)
	}
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

var actionSeq atomic.Int64

// BlockActions is the body Slack posts when userID presses a button with actionID and value;
// responseURL is where the app may answer.
func BlockActions(userID, actionID, value, responseURL string) []byte {
	return []byte(url.Values{"payload": {string(blockActionsJSON(userID, actionID, value, responseURL))}}.Encode())
}

func blockActionsJSON(userID, actionID, value, responseURL string) []byte {
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": userID, "username": "someone", "team_id": "T0ONY"},
		"api_app_id":   "A0ONY",
		"team":         map[string]any{"id": "T0ONY", "domain": "ony"},
		"container":    map[string]any{"type": "message", "message_ts": "1700000000.000001", "channel_id": "D0ONY", "is_ephemeral": false},
		"trigger_id":   "1.2.3",
		"channel":      map[string]any{"id": "D0ONY", "name": "directmessage"},
		"response_url": responseURL,
		"actions": []map[string]any{{
			"action_id": actionID, "block_id": "ony_actions", "type": "button", "value": value,
			"text":      map[string]any{"type": "plain_text", "text": "Approve", "emoji": true},
			"action_ts": fmt.Sprintf("%d.%06d", time.Now().Unix(), actionSeq.Add(1)%1e6),
		}},
	}
	b, _ := json.Marshal(payload)
	return b
}

// SlashCommand is the body Slack posts when userID types command text.
func SlashCommand(userID, command, text, responseURL string) []byte {
	return []byte(url.Values{
		"token": {"legacy-verification-token"}, "team_id": {"T0ONY"}, "team_domain": {"ony"},
		"channel_id": {"D0ONY"}, "channel_name": {"directmessage"}, "user_id": {userID}, "user_name": {"someone"},
		"command": {command}, "text": {text}, "api_app_id": {"A0ONY"}, "response_url": {responseURL},
		"trigger_id": {"1.2.3"},
	}.Encode())
}

// Interaction drives a signed button press at hookURL (…/hooks/slack/interactions), with a
// response_url on this fake.
func (s *Server) Interaction(t testing.TB, hookURL, secret, userID, actionValue string, opts ...Option) *http.Response {
	t.Helper()
	return Post(t, hookURL, secret, BlockActions(userID, "ony_decide_1", actionValue, s.ResponseURL()), opts...)
}

// Command drives a signed "/ony <text>" at hookURL (…/hooks/slack/commands).
func (s *Server) Command(t testing.TB, hookURL, secret, userID, text string, opts ...Option) *http.Response {
	t.Helper()
	return Post(t, hookURL, secret, SlashCommand(userID, "/ony", text, s.ResponseURL()), opts...)
}

// Ack is one Socket Mode acknowledgement the fake received.
type Ack struct {
	EnvelopeID string          `json:"envelope_id"`
	Payload    json.RawMessage `json:"payload"`
}

// SocketMode lets apps.connections.open answer for appToken with a websocket on this fake.
func (s *Server) SocketMode(appToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appToken = appToken
}

// Opened is how many Socket Mode connections were opened (reconnects count).
func (s *Server) Opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// WaitOpened waits until at least n Socket Mode connections were opened.
func (s *Server) WaitOpened(ctx context.Context, n int) error {
	_, err := wait(ctx, s, func() []int { return make([]int, s.opened) }, n)
	return err
}

// Acks returns every acknowledgement received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// WaitAcked waits until at least n envelopes were acknowledged.
func (s *Server) WaitAcked(ctx context.Context, n int) ([]Ack, error) {
	return wait(ctx, s, func() []Ack { return s.acks }, n)
}

// DropSockets closes every open Socket Mode connection, as Slack does now and then.
func (s *Server) DropSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// PushInteraction sends userID's press of a button over Socket Mode and returns the envelope id;
// pushing the same envelope id again (Push) is a redelivery.
func (s *Server) PushInteraction(userID, actionID, value string) string {
	id := s.nextEnvelope()
	s.Push(id, "interactive", json.RawMessage(blockActionsJSON(userID, actionID, value, s.ResponseURL())))
	return id
}

// PushCommand sends userID's "/ony text" over Socket Mode and returns the envelope id.
func (s *Server) PushCommand(userID, text string) string {
	id := s.nextEnvelope()
	s.Push(id, "slash_commands", slack.SlashCommand{TeamID: "T0ONY", ChannelID: "D0ONY", UserID: userID,
		Command: "/ony", Text: text, ResponseURL: s.ResponseURL(), APIAppID: "A0ONY"})
	return id
}

func (s *Server) nextEnvelope() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envSeq++
	return fmt.Sprintf("env-%04d", s.envSeq)
}

// Push queues one Socket Mode envelope for the next open connection.
func (s *Server) Push(envelopeID, typ string, payload any) {
	b, err := json.Marshal(map[string]any{"envelope_id": envelopeID, "type": typ, "payload": payload,
		"accepts_response_payload": typ == "slash_commands", "retry_attempt": 0, "retry_reason": ""})
	if err != nil {
		panic(err)
	}
	s.record(func() {
		s.queue = append(s.queue, b)
		s.sent[envelopeID] = b
	})
}

// Redeliver sends a pushed envelope again, as Slack does when it thinks it was not acknowledged.
func (s *Server) Redeliver(envelopeID string) {
	s.record(func() {
		if b, ok := s.sent[envelopeID]; ok {
			s.queue = append(s.queue, b)
		}
	})
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	app := s.appToken
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		fail(w, "invalid_method")
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case app == "" || auth == "Bearer "+s.token:
		fail(w, "not_allowed_token_type")
		return
	case auth != "Bearer "+app:
		fail(w, "invalid_auth")
		return
	}
	reply(w, map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=fake"})
}

// upgrader accepts the Origin socketmode sends (https://api.slack.com), which is not this host.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.record(func() {
		s.opened++
		s.conns[conn] = true
	})
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var a Ack
			if json.Unmarshal(msg, &a) == nil && a.EnvelopeID != "" {
				s.record(func() { s.acks = append(s.acks, a) })
			}
		}
	}()
	hello := `{"type":"hello","num_connections":1,"debug_info":{"host":"slacktest"},"connection_info":{"app_id":"A0ONY"}}`
	if conn.WriteMessage(websocket.TextMessage, []byte(hello)) != nil {
		return
	}
	ping := time.NewTicker(500 * time.Millisecond)
	defer ping.Stop()
	_ = conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
	for {
		s.mu.Lock()
		msgs := s.queue
		s.queue = nil
		changed := s.changed
		s.mu.Unlock()
		for i, m := range msgs {
			if conn.WriteMessage(websocket.TextMessage, m) != nil {
				s.mu.Lock()
				s.queue = append(msgs[i:], s.queue...)
				s.mu.Unlock()
				return
			}
		}
		select {
		case <-closed:
			return
		case <-changed:
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)) != nil {
				return
			}
		}
	}
}
