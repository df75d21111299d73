package telegram_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/channeltest"
	"github.com/ony-ai/ony/store"
)

const (
	botToken = "123456:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp"
	secret   = "s3cret_webhook-token"
	token    = "tok_abcdefghijklmnopqrstuvwxyz012345" // a decision token as the engine mints it
	console  = "https://ony.example.com/console/handoffs/h1"
)

// fakeHost records what the routes asked of Ony.
type fakeHost struct {
	channeltest.Dedupe
	mu      sync.Mutex
	answers []channel.Answer
	links   []string // code|kind|address
	decide  func(channel.Answer) (store.Handoff, error)
	link    func(code string) (channel.LinkedPerson, error)
}

func (h *fakeHost) Decide(_ context.Context, a channel.Answer) (store.Handoff, error) {
	h.mu.Lock()
	h.answers = append(h.answers, a)
	f := h.decide
	h.mu.Unlock()
	if f != nil {
		return f(a)
	}
	return store.Handoff{Options: options}, nil
}

func (*fakeHost) Report(context.Context, string, string, store.SendState) error { return nil }

func (h *fakeHost) Link(_ context.Context, code, kind, address string) (channel.LinkedPerson, error) {
	h.mu.Lock()
	h.links = append(h.links, code+"|"+kind+"|"+address)
	f := h.link
	h.mu.Unlock()
	if f != nil {
		return f(code)
	}
	return channel.LinkedPerson{Name: "Ana", Org: "Acme"}, nil
}

// Recall is for telephony; chat never asks.
func (*fakeHost) Outcome(context.Context, string, string, string) error {
	panic("a chat channel reported a call outcome")
}

func (h *fakeHost) Recall(context.Context, string, string) (channel.Notification, error) {
	return channel.Notification{}, errors.New("fake host: chat channels do not recall")
}

func (h *fakeHost) Answers() []channel.Answer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]channel.Answer(nil), h.answers...)
}

func (h *fakeHost) Links() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.links...)
}

var options = []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}}

// logBuf is a concurrency-safe log sink, to check what is never logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type setup struct {
	fake  *telegramtest.Server
	ch    *telegram.Channel
	logs  *logBuf
	waits *[]time.Duration
}

func newChannel(t testing.TB, mod func(*telegram.Config)) setup {
	t.Helper()
	fake := telegramtest.New(t, botToken)
	logs := &logBuf{}
	cfg := telegram.Config{BotToken: botToken, APIURL: fake.URL(), Timeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&cfg)
	}
	ch, err := telegram.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	ch.SetWait(func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
			return nil
		}
	})
	return setup{fake: fake, ch: ch, logs: logs, waits: waits}
}

func notification(chat string) channel.Notification {
	return channel.Notification{Key: "k1", OrgID: "o1", HandoffID: "h1", Action: "deploy", Risk: "high",
		Gist: `[high] deploy: deploy <script>alert("x")</script> & rollback`, Options: options, ConsoleURL: console,
		ExpiresAt: time.Date(2026, 12, 6, 14, 3, 0, 0, time.UTC), Token: token,
		Recipient: channel.Recipient{UserID: "u1", Address: chat, Timezone: time.UTC}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]telegram.Config{
		"no token":            {},
		"malformed token":     {BotToken: "nope"},
		"secret, no url":      {BotToken: botToken, WebhookSecret: secret},
		"secret, http url":    {BotToken: botToken, WebhookSecret: secret, PublicURL: "http://ony.example.com"},
		"secret with a space": {BotToken: botToken, WebhookSecret: "a b", PublicURL: "https://ony.example.com"},
		"api url":             {BotToken: botToken, APIURL: "ftp://x"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := telegram.New(cfg); err == nil {
				t.Fatal("New accepted it")
			} else if strings.Contains(err.Error(), botToken) {
				t.Fatalf("error quotes the token: %v", err)
			}
		})
	}
}

func TestNotifyRendersEscapedMessageWithButtons(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	d, err := s.ch.Notify(ctxT(t), notification("777"))
	if err != nil {
		t.Fatal(err)
	}
	sent := s.fake.Sent()
	if len(sent) != 1 {
		t.Fatalf("sent %d messages", len(sent))
	}
	m := sent[0]
	if d.Ref != "777/"+itoa(m.MessageID) || d.State != store.SendSent {
		t.Fatalf("delivery %+v, message %d", d, m.MessageID)
	}
	for _, want := range []string{"🟠", "<b>High risk</b>", "<code>deploy</code>\ndeploy &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; rollback", "Expires Sun 6 Dec 14:03 UTC"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text %q lacks %q", m.Text, want)
		}
	}
	if m.ParseMode != "HTML" {
		t.Errorf("parse mode %q", m.ParseMode)
	}
	want := []telegramtest.Button{{Text: "Approve", CallbackData: token + ":1"}, {Text: "Deny", CallbackData: token + ":2"}, {Text: "Open in console", URL: console}}
	if got := m.Buttons(); !equalButtons(got, want) {
		t.Fatalf("buttons %+v, want %+v", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func equalButtons(a, b []telegramtest.Button) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNotifyStepUpApprovesOnlyInConsole(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	n := notification("777")
	n.StepUp = true
	if _, err := s.ch.Notify(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	want := []telegramtest.Button{{Text: "Approve in console", URL: console}, {Text: "Deny", CallbackData: token + ":2"}, {Text: "Open in console", URL: console}}
	if got := s.fake.Sent()[0].Buttons(); !equalButtons(got, want) {
		t.Fatalf("buttons %+v, want %+v", got, want)
	}
}

func TestNotifyCallbackDataLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tokenLen int
		ok       bool
	}{{62, true}, {63, false}} {
		s := newChannel(t, nil)
		n := notification("777")
		n.Token = strings.Repeat("t", tc.tokenLen) // with ":1" that is 64 or 65 bytes
		_, err := s.ch.Notify(ctxT(t), n)
		if (err == nil) != tc.ok {
			t.Fatalf("token of %d bytes: err %v", tc.tokenLen, err)
		}
		if want := map[bool]int{true: 1, false: 0}[tc.ok]; len(s.fake.Sent()) != want {
			t.Fatalf("token of %d bytes: %d sent, want %d", tc.tokenLen, len(s.fake.Sent()), want)
		}
	}
}

func TestNotifyToChannelUsernameRefersByNumericID(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	d, err := s.ch.Notify(ctxT(t), notification("@ops_alerts"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Ref, "-100") {
		t.Fatalf("ref %q should name the chat by its id", d.Ref)
	}
	if err := s.ch.Update(ctxT(t), channel.Update{Ref: d.Ref, Text: "Approved by Ana via telegram"}); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateEditsTextAndRemovesKeyboard(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	ctx := ctxT(t)
	d, err := s.ch.Notify(ctx, notification("777"))
	if err != nil {
		t.Fatal(err)
	}
	u := channel.Update{Ref: d.Ref, Status: store.StatusApproved, Text: "Approved by Ana <ana> via call, 14:03 UTC"}
	if err := s.ch.Update(ctx, u); err != nil {
		t.Fatal(err)
	}
	ed := s.fake.Edited()
	if len(ed) != 1 || ed[0].Text != u.Text || ed[0].Keyboard != nil {
		t.Fatalf("edited %+v", ed)
	}
	// Repeated: Telegram says "not modified", which is success.
	if err := s.ch.Update(ctx, u); err != nil {
		t.Fatalf("second update: %v", err)
	}
	// Deleted message: nothing to rewrite.
	if err := s.ch.Update(ctx, channel.Update{Ref: "777/999999", Text: "x"}); err != nil {
		t.Fatalf("missing message: %v", err)
	}
	for _, ref := range []string{"", "777", "777/x", "/5"} {
		if err := s.ch.Update(ctx, channel.Update{Ref: ref, Text: "x"}); err == nil {
			t.Errorf("ref %q accepted", ref)
		}
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	t.Run("waits and retries", func(t *testing.T) {
		t.Parallel()
		s := newChannel(t, nil)
		s.fake.RateLimit("sendMessage", 2, 3)
		if _, err := s.ch.Notify(ctxT(t), notification("777")); err != nil {
			t.Fatal(err)
		}
		if len(s.fake.Sent()) != 1 || len(*s.waits) != 2 || (*s.waits)[0] != 3*time.Second {
			t.Fatalf("sent %d, waits %v", len(s.fake.Sent()), *s.waits)
		}
	})
	t.Run("gives up after two retries", func(t *testing.T) {
		t.Parallel()
		s := newChannel(t, nil)
		s.fake.RateLimit("sendMessage", 3, 1)
		_, err := s.ch.Notify(ctxT(t), notification("777"))
		var ae *telegram.APIError
		if !errors.As(err, &ae) || ae.Code != 429 || ae.RetryAfter != time.Second {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("deadline first", func(t *testing.T) {
		t.Parallel()
		s := newChannel(t, nil)
		s.fake.RateLimit("sendMessage", 1, 30)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := s.ch.Notify(ctx, notification("777"))
		var ae *telegram.APIError
		if !errors.As(err, &ae) || ae.Code != 429 || len(*s.waits) != 0 {
			t.Fatalf("err %v, waits %v", err, *s.waits)
		}
	})
}

func TestErrorsNeverQuoteTheToken(t *testing.T) {
	t.Parallel()
	fake := telegramtest.New(t, "999:wrongwrongwrongwrongwrongwrong")
	ch, err := telegram.New(telegram.Config{BotToken: botToken, APIURL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.Notify(ctxT(t), notification("777"))
	var ae *telegram.APIError
	if !errors.As(err, &ae) || ae.Code != 401 {
		t.Fatalf("wrong token: %v", err)
	}
	// Nothing listens: net/http's error would quote the URL, with the token in its path.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	ch, err = telegram.New(telegram.Config{BotToken: botToken, APIURL: dead.URL, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.Notify(ctxT(t), notification("777"))
	if err == nil || strings.Contains(err.Error(), botToken) || strings.Contains(err.Error(), dead.URL) {
		t.Fatalf("transport error %q", err)
	}
	if err.Error() != "telegram: sendMessage: post failed" {
		t.Fatalf("transport error %q", err)
	}
}

func TestUsernameIsCached(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	name, err := s.ch.Username(ctxT(t))
	if err != nil || name != "ony_test_bot" {
		t.Fatalf("%q %v", name, err)
	}
	s.fake.RateLimit("getMe", 10, 60)
	if name, err := s.ch.Username(ctxT(t)); err != nil || name != "ony_test_bot" {
		t.Fatalf("cached: %q %v", name, err)
	}
}

// The agent that asked is shown by its device name, HTML-escaped; without one, nothing.
func TestNotifyShowsTheAgent(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	n := notification("777")
	n.Agent = `ci-bot <b>"x"</b> & ` + strings.Repeat("y", 200)
	if _, err := s.ch.Notify(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ch.Notify(ctxT(t), notification("777")); err != nil {
		t.Fatal(err)
	}
	sent := s.fake.Sent()
	if len(sent) != 2 {
		t.Fatalf("sent %d messages", len(sent))
	}
	if got := sent[0].Text; !strings.Contains(got, "\nAsked by ci-bot &lt;b&gt;&#34;x&#34;&lt;/b&gt; &amp; yyy") ||
		strings.Contains(got, "<b>\"x\"") || strings.Contains(got, strings.Repeat("y", 100)) {
		t.Errorf("agent not shown, unescaped or not capped: %q", got)
	}
	if strings.Contains(sent[1].Text, "Asked by") {
		t.Errorf("no agent, yet: %q", sent[1].Text)
	}
}
