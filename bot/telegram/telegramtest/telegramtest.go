// Package telegramtest is an in-process fake of the Telegram Bot API, strict the way Telegram is
// (token in the path, JSON bodies, required fields), plus a driver for Ony's /hooks/telegram route.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ony-ai/ony/internal/testhttp"
)

// Button is one inline keyboard button as sent.
type Button struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

// Message is a message the bot sent or edited, as the fake holds it.
type Message struct {
	ChatID    int64
	MessageID int64
	Text      string
	ParseMode string
	// Keyboard is the inline keyboard, rows of buttons; nil when there is none.
	Keyboard [][]Button
}

// Buttons is every button of the keyboard, row after row.
func (m Message) Buttons() []Button {
	var out []Button
	for _, r := range m.Keyboard {
		out = append(out, r...)
	}
	return out
}

// Answer is one answerCallbackQuery.
type Answer struct {
	CallbackQueryID string
	Text            string
	ShowAlert       bool
}

// Webhook is what setWebhook registered.
type Webhook struct {
	URL, Secret    string
	AllowedUpdates []string
}

// Server is the fake Bot API.
type Server struct {
	t     testing.TB
	token string
	srv   *httptest.Server

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change, to wake waiters
	nextMsg  int64
	nextUpd  int64
	nextCB   int64
	messages map[string]*Message // "chat/message" → current state
	sent     []Message
	edited   []Message
	answered []Answer
	queries  map[string]bool // callback query ids issued and not yet answered
	queue    []json.RawMessage
	polling  bool
	webhook  *Webhook
	limits   map[string][]*apiErr // method → refusals still to give
	username string
}

// New starts a fake Bot API for the bot token; it stops when the test ends.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{t: t, token: token, changed: make(chan struct{}), messages: map[string]*Message{},
		queries: map[string]bool{}, limits: map[string][]*apiErr{}, username: "ony_test_bot", nextMsg: 100, nextUpd: 1000}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base to give the client (Config.APIURL).
func (s *Server) URL() string { return s.srv.URL }

// RateLimit makes the next n calls of method answer 429 with retry_after seconds.
func (s *Server) RateLimit(method string, n, retryAfter int) {
	for range n {
		s.fail(method, &apiErr{code: 429, desc: "Too Many Requests: retry after " + strconv.Itoa(retryAfter), retryAfter: retryAfter})
	}
}

// Fail makes the next n calls of method answer code with description ("Conflict: terminated by
// other getUpdates request", 409), before any RateLimit or Fail queued after it.
func (s *Server) Fail(method string, n, code int, description string) {
	for range n {
		s.fail(method, &apiErr{code: code, desc: description})
	}
}

func (s *Server) fail(method string, e *apiErr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = append(s.limits[method], e)
}

// Sent is every sendMessage accepted, in order, as sent.
func (s *Server) Sent() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent...)
}

// Edited is every editMessageText accepted, in order: the message as it became.
func (s *Server) Edited() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.edited...)
}

// Answered is every answerCallbackQuery accepted, in order.
func (s *Server) Answered() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Answer(nil), s.answered...)
}

// Webhook is what setWebhook last registered, nil if none is set.
func (s *Server) Webhook() *Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webhook == nil {
		return nil
	}
	w := *s.webhook
	return &w
}

// WaitWebhook waits until a webhook is set and returns it.
func (s *Server) WaitWebhook(ctx context.Context) (*Webhook, error) {
	for {
		s.mu.Lock()
		w, ch := s.webhook, s.changed
		s.mu.Unlock()
		if w != nil {
			c := *w
			return &c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("telegramtest: no webhook set: %w", ctx.Err())
		}
	}
}

// WaitSent waits until at least n messages were sent and returns them all.
func (s *Server) WaitSent(ctx context.Context, n int) ([]Message, error) {
	return s.waitFor(ctx, func() []Message { return s.sent }, n, "sent")
}

// WaitEdited waits until at least n edits were made and returns them all.
func (s *Server) WaitEdited(ctx context.Context, n int) ([]Message, error) {
	return s.waitFor(ctx, func() []Message { return s.edited }, n, "edited")
}

// WaitAnswered waits until at least n callback queries were answered and returns the answers.
func (s *Server) WaitAnswered(ctx context.Context, n int) ([]Answer, error) {
	for {
		s.mu.Lock()
		got, ch := append([]Answer(nil), s.answered...), s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("telegramtest: %d callback answers, waited for %d: %w", len(got), n, ctx.Err())
		}
	}
}

func (s *Server) waitFor(ctx context.Context, list func() []Message, n int, what string) ([]Message, error) {
	for {
		s.mu.Lock()
		got, ch := append([]Message(nil), list()...), s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return got, fmt.Errorf("telegramtest: %d messages %s, waited for %d: %w", len(got), what, n, ctx.Err())
		}
	}
}

// notify wakes waiters; s.mu is held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Queue adds an update for getUpdates to serve (long polling).
func (s *Server) Queue(update []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, json.RawMessage(update))
	s.notify()
}

// Tap builds the callback_query update Telegram sends when user fromID presses the button labelled
// label on m; the query id is issued by the fake, so the bot's answer to it is accepted once.
func (s *Server) Tap(m Message, label string, fromID int64) []byte {
	s.t.Helper()
	var data string
	for _, b := range m.Buttons() {
		if b.Text == label && b.CallbackData != "" {
			data = b.CallbackData
		}
	}
	if data == "" {
		s.t.Fatalf("telegramtest: message %d has no callback button %q", m.MessageID, label)
	}
	return s.Callback(m, data, fromID)
}

// Callback builds a callback_query update with any data, as a forged or stale button would send it.
func (s *Server) Callback(m Message, data string, fromID int64) []byte {
	s.mu.Lock()
	s.nextCB++
	s.nextUpd++
	id, upd := "cb"+strconv.FormatInt(s.nextCB, 10), s.nextUpd
	s.queries[id] = true
	s.mu.Unlock()
	return mustJSON(map[string]any{"update_id": upd, "callback_query": map[string]any{
		"id": id, "from": map[string]any{"id": fromID, "is_bot": false, "first_name": "Ana"},
		"chat_instance": "1", "data": data,
		"message": map[string]any{"message_id": m.MessageID, "date": time.Now().Unix(), "chat": map[string]any{"id": m.ChatID, "type": chatType(m.ChatID)}, "text": m.Text},
	}})
}

// Command builds a message update: user fromID writes text in chatID (private when chatID == fromID).
func (s *Server) Command(chatID, fromID int64, text string) []byte {
	s.mu.Lock()
	s.nextUpd++
	s.nextMsg++
	upd, mid := s.nextUpd, s.nextMsg
	s.mu.Unlock()
	typ := "private"
	if chatID != fromID {
		typ = chatType(chatID)
	}
	return mustJSON(map[string]any{"update_id": upd, "message": map[string]any{
		"message_id": mid, "date": time.Now().Unix(), "text": text,
		"from": map[string]any{"id": fromID, "is_bot": false, "first_name": "Ana"},
		"chat": map[string]any{"id": chatID, "type": typ},
	}})
}

func chatType(id int64) string {
	if id < 0 {
		return "supergroup"
	}
	return "private"
}

// Post sends update to Ony's webhook at url with the secret header (none when secret is "").
func Post(t testing.TB, url, secret string, update []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(update))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// The fake's request shapes; unknown fields are refused, so a typo in the client fails a test.
type (
	sendMessage struct {
		ChatID      json.RawMessage `json:"chat_id"`
		Text        string          `json:"text"`
		ParseMode   string          `json:"parse_mode"`
		ReplyMarkup *struct {
			InlineKeyboard [][]Button `json:"inline_keyboard"`
		} `json:"reply_markup"`
	}
	editMessageText struct {
		ChatID    json.RawMessage `json:"chat_id"`
		MessageID int64           `json:"message_id"`
		Text      string          `json:"text"`
		ParseMode string          `json:"parse_mode"`
	}
	answerCallbackQuery struct {
		ID        string `json:"callback_query_id"`
		Text      string `json:"text"`
		ShowAlert bool   `json:"show_alert"`
	}
	setWebhook struct {
		URL            string   `json:"url"`
		SecretToken    string   `json:"secret_token"`
		AllowedUpdates []string `json:"allowed_updates"`
	}
	getUpdates struct {
		Offset         int64    `json:"offset"`
		Limit          int      `json:"limit"`
		Timeout        int      `json:"timeout"`
		AllowedUpdates []string `json:"allowed_updates"`
	}
)

type apiErr struct {
	code       int
	desc       string
	retryAfter int
}

func bad(desc string) *apiErr { return &apiErr{code: 400, desc: "Bad Request: " + desc} }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method, ok := strings.CutPrefix(r.URL.Path, "/bot"+s.token+"/")
	if !ok || s.token == "" || strings.Contains(method, "/") {
		write(w, nil, &apiErr{code: 401, desc: "Unauthorized"})
		return
	}
	if r.Method != http.MethodPost {
		write(w, nil, bad("the fake takes POST only"))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		write(w, nil, bad("the fake takes JSON bodies only, got "+strconv.Quote(ct)))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		write(w, nil, bad("unreadable body"))
		return
	}
	decode := func(v any) *apiErr {
		d := json.NewDecoder(bytes.NewReader(body))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			return bad("can't parse request JSON: " + err.Error())
		}
		return nil
	}
	s.mu.Lock()
	if l := s.limits[method]; len(l) > 0 {
		s.limits[method] = l[1:]
		s.mu.Unlock()
		write(w, nil, l[0])
		return
	}
	s.mu.Unlock()
	var result any
	var aerr *apiErr
	switch method {
	case "getMe":
		result = map[string]any{"id": 4242, "is_bot": true, "first_name": "Ony", "username": s.username}
	case "sendMessage":
		var p sendMessage
		if aerr = decode(&p); aerr == nil {
			result, aerr = s.send(p)
		}
	case "editMessageText":
		var p editMessageText
		if aerr = decode(&p); aerr == nil {
			result, aerr = s.edit(p)
		}
	case "answerCallbackQuery":
		var p answerCallbackQuery
		if aerr = decode(&p); aerr == nil {
			result, aerr = s.answer(p)
		}
	case "setWebhook":
		var p setWebhook
		if aerr = decode(&p); aerr == nil {
			result, aerr = s.setWebhook(p)
		}
	case "deleteWebhook":
		s.mu.Lock()
		s.webhook = nil
		s.notify()
		s.mu.Unlock()
		result = true
	case "getUpdates":
		var p getUpdates
		if aerr = decode(&p); aerr == nil {
			result, aerr = s.getUpdates(r.Context(), p)
		}
	default:
		aerr = &apiErr{code: 404, desc: "Not Found"}
	}
	write(w, result, aerr)
}

func write(w http.ResponseWriter, result any, e *apiErr) {
	w.Header().Set("Content-Type", "application/json")
	if e != nil {
		w.WriteHeader(e.code)
		out := map[string]any{"ok": false, "error_code": e.code, "description": e.desc}
		if e.retryAfter > 0 {
			out["parameters"] = map[string]any{"retry_after": e.retryAfter}
		}
		json.NewEncoder(w).Encode(out)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

var usernameRE = regexp.MustCompile(`^"@[A-Za-z][A-Za-z0-9_]{3,31}"$`)

// chatID reads chat_id as Telegram does: an integer, a string of one, or "@channelusername".
func chatID(raw json.RawMessage) (int64, *apiErr) {
	if len(raw) == 0 {
		return 0, bad("chat_id is empty")
	}
	if usernameRE.Match(raw) {
		return -1009999999999, nil // the fake's one public channel
	}
	s := strings.Trim(string(raw), `"`)
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id == 0 {
		return 0, bad("chat not found")
	}
	return id, nil
}

func checkText(text, parseMode string) *apiErr {
	if strings.TrimSpace(text) == "" {
		return bad("message text is empty")
	}
	if utf8.RuneCountInString(text) > 4096 {
		return bad("message is too long")
	}
	switch parseMode {
	case "":
	case "HTML":
		if err := checkHTML(text); err != "" {
			return bad("can't parse entities: " + err)
		}
	default:
		return bad("unsupported parse_mode " + strconv.Quote(parseMode))
	}
	return nil
}

var (
	allowedTag = regexp.MustCompile(`</?(b|strong|i|em|u|ins|s|strike|del|code|pre)>`)
	entity     = regexp.MustCompile(`&(lt|gt|amp|quot|#39|#[0-9]{1,6});`)
)

// checkHTML refuses what Telegram's HTML parser refuses: tags it does not know and a bare < > or &.
func checkHTML(text string) string {
	rest := allowedTag.ReplaceAllString(text, "")
	rest = entity.ReplaceAllString(rest, "")
	if i := strings.IndexAny(rest, "<>&"); i >= 0 {
		return fmt.Sprintf("unsupported start tag or unescaped %q", rest[i])
	}
	return ""
}

func checkKeyboard(rows [][]Button) *apiErr {
	for _, row := range rows {
		for _, b := range row {
			switch {
			case b.Text == "":
				return bad("text buttons are unallowed in the inline keyboard")
			case (b.CallbackData == "") == (b.URL == ""):
				return bad("a button needs exactly one of callback_data and url")
			case len(b.CallbackData) > 64:
				return bad("BUTTON_DATA_INVALID")
			case b.URL != "" && !strings.HasPrefix(b.URL, "https://") && !strings.HasPrefix(b.URL, "http://"):
				return bad("inline keyboard button URL " + strconv.Quote(b.URL) + " is invalid: unsupported URL protocol")
			}
		}
	}
	return nil
}

func (s *Server) send(p sendMessage) (any, *apiErr) {
	id, e := chatID(p.ChatID)
	if e != nil {
		return nil, e
	}
	if e := checkText(p.Text, p.ParseMode); e != nil {
		return nil, e
	}
	m := Message{ChatID: id, Text: p.Text, ParseMode: p.ParseMode}
	if p.ReplyMarkup != nil {
		if e := checkKeyboard(p.ReplyMarkup.InlineKeyboard); e != nil {
			return nil, e
		}
		m.Keyboard = p.ReplyMarkup.InlineKeyboard
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextMsg++
	m.MessageID = s.nextMsg
	s.messages[key(id, m.MessageID)] = &m
	s.sent = append(s.sent, m)
	s.notify()
	return wire(m), nil
}

func key(chat, msg int64) string {
	return strconv.FormatInt(chat, 10) + "/" + strconv.FormatInt(msg, 10)
}

func wire(m Message) map[string]any {
	return map[string]any{"message_id": m.MessageID, "date": time.Now().Unix(), "text": m.Text,
		"chat": map[string]any{"id": m.ChatID, "type": chatType(m.ChatID)}}
}

func (s *Server) edit(p editMessageText) (any, *apiErr) {
	id, e := chatID(p.ChatID)
	if e != nil {
		return nil, e
	}
	if e := checkText(p.Text, p.ParseMode); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[key(id, p.MessageID)]
	if !ok {
		return nil, bad("message to edit not found")
	}
	if m.Text == p.Text && m.Keyboard == nil {
		return nil, bad("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")
	}
	// Without reply_markup the inline keyboard goes, as on Telegram.
	m.Text, m.ParseMode, m.Keyboard = p.Text, p.ParseMode, nil
	s.edited = append(s.edited, *m)
	s.notify()
	return wire(*m), nil
}

func (s *Server) answer(p answerCallbackQuery) (any, *apiErr) {
	if utf8.RuneCountInString(p.Text) > 200 {
		return nil, bad("MESSAGE_TOO_LONG")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.queries[p.ID] {
		return nil, bad("query is too old and response timeout expired or query ID is invalid")
	}
	delete(s.queries, p.ID)
	s.answered = append(s.answered, Answer{CallbackQueryID: p.ID, Text: p.Text, ShowAlert: p.ShowAlert})
	s.notify()
	return true, nil
}

var secretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

func (s *Server) setWebhook(p setWebhook) (any, *apiErr) {
	if !strings.HasPrefix(p.URL, "https://") {
		return nil, bad("bad webhook: An HTTPS URL must be provided for webhook")
	}
	if p.SecretToken != "" && !secretRE.MatchString(p.SecretToken) {
		return nil, bad("secret token contains unallowed characters")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = &Webhook{URL: p.URL, Secret: p.SecretToken, AllowedUpdates: p.AllowedUpdates}
	s.notify()
	return true, nil
}

// getUpdates serves queued updates with id >= offset, dropping older ones (an offset confirms
// them), and waits up to timeout seconds for one to arrive.
func (s *Server) getUpdates(ctx context.Context, p getUpdates) (any, *apiErr) {
	if p.Timeout < 0 || p.Timeout > 50 {
		return nil, bad("timeout must be 0 to 50")
	}
	s.mu.Lock()
	if s.webhook != nil {
		s.mu.Unlock()
		return nil, &apiErr{code: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	if s.polling {
		s.mu.Unlock()
		return nil, &apiErr{code: 409, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
	}
	s.polling = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.polling = false; s.mu.Unlock() }()
	timer := time.NewTimer(time.Duration(p.Timeout) * time.Second)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var keep, out []json.RawMessage
		for _, u := range s.queue {
			var v struct {
				ID int64 `json:"update_id"`
			}
			json.Unmarshal(u, &v)
			if p.Offset != 0 && v.ID < p.Offset {
				continue
			}
			keep = append(keep, u)
			if p.Limit <= 0 || len(out) < p.Limit {
				out = append(out, u)
			}
		}
		s.queue = keep
		ch := s.changed
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return []json.RawMessage{}, nil
		case <-ctx.Done():
			return []json.RawMessage{}, nil
		}
	}
}
