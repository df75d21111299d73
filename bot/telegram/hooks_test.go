package telegram_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/channeltest"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// hook serves the channel's routes as the server mounts them, under /hooks/telegram.
func hook(t *testing.T, ch *telegram.Channel, host channel.Host) string {
	t.Helper()
	kinds, err := channel.NewKinds(telegram.Kind)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(kinds, ch)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := reg.Routes(host)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks/telegram"
}

func withSecret(c *telegram.Config) {
	c.WebhookSecret, c.PublicURL = secret, "https://ony.example.com"
}

// sentMessage posts a notification and returns it as the fake holds it.
func sentMessage(t *testing.T, s setup) telegramtest.Message {
	t.Helper()
	if _, err := s.ch.Notify(ctxT(t), notification("555")); err != nil {
		t.Fatal(err)
	}
	return s.fake.Sent()[0]
}

func TestWebhookTapDecides(t *testing.T) {
	t.Parallel()
	s := newChannel(t, withSecret)
	host := &fakeHost{}
	url := hook(t, s.ch, host)
	m := sentMessage(t, s)
	if resp := telegramtest.Post(t, url, secret, s.fake.Tap(m, "Approve", 555)); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := channel.Answer{Token: token, Index: 1, Channel: "telegram", From: "555"}
	if got := host.Answers(); len(got) != 1 || got[0] != want {
		t.Fatalf("answers %+v", got)
	}
	ans := s.fake.Answered()
	if len(ans) != 1 || ans[0].Text != "Approve — recorded" || ans[0].ShowAlert {
		t.Fatalf("callback answers %+v", ans)
	}
}

func TestWebhookRefusesWithoutDeciding(t *testing.T) {
	t.Parallel()
	big := append([]byte(`{"update_id":1,"message":{"text":"`), make([]byte, 1<<20)...)
	for _, tc := range []struct {
		name   string
		cfg    func(*telegram.Config)
		secret string
		body   func(s setup, m telegramtest.Message) []byte
		status int
	}{
		{"no webhook configured", nil, secret, nil, 404},
		{"missing secret", withSecret, "", nil, 401},
		{"wrong secret", withSecret, secret + "x", nil, 401},
		{"secret prefix", withSecret, secret[:5], nil, 401},
		{"oversized", withSecret, secret, func(setup, telegramtest.Message) []byte { return big }, 413},
		{"malformed JSON", withSecret, secret, func(setup, telegramtest.Message) []byte { return []byte(`{"update_id":`) }, 400},
		{"no update id", withSecret, secret, func(setup, telegramtest.Message) []byte { return []byte(`{"callback_query":{"id":"x","data":"a:1"}}`) }, 400},
		{"unknown update type", withSecret, secret, func(setup, telegramtest.Message) []byte {
			return []byte(`{"update_id":77,"edited_message":{"text":"/start abc"}}`)
		}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newChannel(t, tc.cfg)
			host := &fakeHost{}
			url := hook(t, s.ch, host)
			m := sentMessage(t, s)
			body := s.fake.Tap(m, "Approve", 555)
			if tc.body != nil {
				body = tc.body(s, m)
			}
			if resp := telegramtest.Post(t, url, tc.secret, body); resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if len(host.Answers()) != 0 || len(host.Links()) != 0 {
				t.Fatalf("host acted: %+v %+v", host.Answers(), host.Links())
			}
			if tc.status == 401 || tc.status == 404 {
				if host.Onces() != 0 || len(s.fake.Answered()) != 0 {
					t.Fatal("a refused request reached dedupe or Telegram")
				}
			}
		})
	}
}

func TestWebhookReplayedUpdateIsDropped(t *testing.T) {
	t.Parallel()
	s := newChannel(t, withSecret)
	host := &fakeHost{}
	url := hook(t, s.ch, host)
	tap := s.fake.Tap(sentMessage(t, s), "Deny", 555)
	for range 3 {
		if resp := telegramtest.Post(t, url, secret, tap); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got := host.Answers(); len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("answers %+v", got)
	}
	if len(s.fake.Answered()) != 1 {
		t.Fatalf("answered %d", len(s.fake.Answered()))
	}
}

func TestCallbackAnsweredInEveryCase(t *testing.T) {
	t.Parallel()
	leaky := errors.New(`Post "https://api.telegram.org/bot` + botToken + `/x": dial tcp: refused`)
	for _, tc := range []struct {
		name    string
		data    string // "" = the Approve button
		err     error
		text    string
		decided bool
	}{
		{"already final", "", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call"), "this handoff was already approved by Ana via call", true},
		{"not linked", "", problem.New(problem.Forbidden, "not_linked", "your Telegram account is not linked to a member of this organization"), "your Telegram account is not linked to a member of this organization", true},
		{"step-up", "", problem.New(problem.Forbidden, "stepup_required", "approving a high handoff needs the console"), "approving a high handoff needs the console", true},
		{"long message", "", problem.New(problem.Forbidden, "not_linked", "%s", strings.Repeat("é", 250)), strings.Repeat("é", 199) + "…", true},
		{"internal error", "", leaky, "Ony could not record that, try the console", true},
		{"forged data", "not-ours", nil, "This button is not one of Ony's, or no longer valid", false},
		{"index zero", token + ":0", nil, "This button is not one of Ony's, or no longer valid", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newChannel(t, withSecret)
			host := &fakeHost{decide: func(channel.Answer) (store.Handoff, error) { return store.Handoff{}, tc.err }}
			url := hook(t, s.ch, host)
			m := sentMessage(t, s)
			up := s.fake.Tap(m, "Approve", 555)
			if tc.data != "" {
				up = s.fake.Callback(m, tc.data, 555)
			}
			if resp := telegramtest.Post(t, url, secret, up); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := len(host.Answers()) == 1; got != tc.decided {
				t.Fatalf("decided %v, want %v", got, tc.decided)
			}
			ans := s.fake.Answered()
			if len(ans) != 1 || ans[0].Text != tc.text || !ans[0].ShowAlert {
				t.Fatalf("callback answers %+v", ans)
			}
			if strings.Contains(s.logs.String(), botToken) || strings.Contains(s.logs.String(), token) {
				t.Fatalf("the log quotes a token: %s", s.logs.String())
			}
		})
	}
}

func TestLinkCommands(t *testing.T) {
	t.Parallel()
	invalid := problem.New(problem.Invalid, "invalid_link_code", "that linking code is wrong, used or expired")
	for _, tc := range []struct {
		name      string
		chat      int64
		text      string
		getMe     bool // the bot knows its username
		linkErr   error
		wantLink  string // "" = Link not called
		wantReply string // "" = nothing sent
	}{
		{"deep link", 555, "/start abcd-efgh-jkmn", false, nil, "abcd-efgh-jkmn|telegram|555", "Linked to Ana at Acme."},
		{"link command", 555, "/link abcd-efgh-jkmn", false, nil, "abcd-efgh-jkmn|telegram|555", "Linked to Ana at Acme."},
		{"addressed in private", 555, "/link@ony_test_bot abcd", true, nil, "abcd|telegram|555", "Linked to Ana at Acme."},
		{"bad code", 555, "/start nope", false, invalid, "nope|telegram|555", "that linking code is wrong, used or expired"},
		{"start without code", 555, "/start", false, nil, "", "Hi, I am Ony."},
		{"plain text", 555, "hello", false, nil, "", ""},
		{"group, not addressed", -100123, "/link abcd", true, nil, "", ""},
		{"group, other bot", -100123, "/link@other_bot abcd", true, nil, "", ""},
		{"group, addressed", -100123, "/link@ony_test_bot abcd", true, nil, "", "private chat"},
		{"group, addressed, getMe on demand", -100123, "/start@Ony_Test_Bot", false, nil, "", "private chat"},
		{"private, other bot", 555, "/start@other_bot abcd", false, nil, "", ""},
		{"code and more", 555, "/link abcd efgh", false, nil, "", "Hi, I am Ony."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newChannel(t, withSecret)
			if tc.getMe {
				if _, err := s.ch.Username(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
			host := &fakeHost{link: func(string) (channel.LinkedPerson, error) {
				return channel.LinkedPerson{Name: "Ana", Org: "Acme"}, tc.linkErr
			}}
			url := hook(t, s.ch, host)
			if resp := telegramtest.Post(t, url, secret, s.fake.Command(tc.chat, 555, tc.text)); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			links := host.Links()
			if (tc.wantLink == "") != (len(links) == 0) || (tc.wantLink != "" && links[0] != tc.wantLink) {
				t.Fatalf("links %v, want %q", links, tc.wantLink)
			}
			if logs := s.logs.String(); strings.Contains(logs, "555") || strings.Contains(logs, "abcd") || strings.Contains(logs, "nope") {
				t.Fatalf("the log names the chat or the code:\n%s", logs)
			}
			sent := s.fake.Sent()
			if tc.wantReply == "" {
				if len(sent) != 0 {
					t.Fatalf("replied %+v", sent)
				}
				return
			}
			if len(sent) != 1 || sent[0].ChatID != tc.chat || !strings.Contains(sent[0].Text, tc.wantReply) {
				t.Fatalf("replies %+v, want %q", sent, tc.wantReply)
			}
		})
	}
}

func TestRunRegistersWebhook(t *testing.T) {
	t.Parallel()
	s := newChannel(t, withSecret)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- s.ch.Run(ctx, &fakeHost{}) }()
	w, err := s.fake.WaitWebhook(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w.URL != "https://ony.example.com/hooks/telegram" || w.Secret != secret || strings.Join(w.AllowedUpdates, ",") != "message,callback_query" {
		t.Fatalf("webhook %+v", w)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunLongPollingDeliversTap(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	host := &fakeHost{}
	// A webhook left from an earlier setup: Run must delete it, or getUpdates is refused.
	setLeftoverWebhook(t, s.fake)
	m := sentMessage(t, s)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- s.ch.Run(ctx, host) }()
	tap := s.fake.Tap(m, "Approve", 555)
	s.fake.Queue(tap)
	s.fake.Queue(tap) // delivered twice: decided once
	if _, err := s.fake.WaitAnswered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.fake.Queue(s.fake.Command(555, 555, "/start abcd"))
	if _, err := s.fake.WaitSent(ctx, 2); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := host.Answers(); len(got) != 1 || got[0].From != "555" || got[0].Index != 1 {
		t.Fatalf("answers %+v", got)
	}
	if got := host.Links(); len(got) != 1 {
		t.Fatalf("links %v", got)
	}
	if s.fake.Webhook() != nil {
		t.Fatal("the webhook was not deleted")
	}
}

func setLeftoverWebhook(t *testing.T, fake *telegramtest.Server) {
	t.Helper()
	resp, err := testhttp.Client.Post(fake.URL()+"/bot"+botToken+"/setWebhook", "application/json",
		strings.NewReader(`{"url":"https://old.example.com/hook"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if fake.Webhook() == nil {
		t.Fatal("setup: no webhook")
	}
}

func TestRunLongPollingBacksOffAndLogsConflictOnce(t *testing.T) {
	t.Parallel()
	s := newChannel(t, nil)
	host := &fakeHost{}
	s.fake.Fail("deleteWebhook", 1, 502, "Bad Gateway")
	s.fake.Fail("getUpdates", 6, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
	m := sentMessage(t, s)
	s.fake.Queue(s.fake.Tap(m, "Deny", 555))
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- s.ch.Run(ctx, host) }()
	if _, err := s.fake.WaitAnswered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second}
	if got := *s.waits; !slices.Equal(got, want) {
		t.Fatalf("waits %v, want %v", got, want)
	}
	if n := strings.Count(s.logs.String(), "long polling serves one replica only"); n != 1 {
		t.Fatalf("conflict logged %d times:\n%s", n, s.logs.String())
	}
	if got := host.Answers(); len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("answers %+v", got)
	}
}

// Dedupe down (Redis unreachable): the tap is still handled, since a token decides only once anyway.
func TestWebhookActsWhenDedupeIsDown(t *testing.T) {
	t.Parallel()
	s := newChannel(t, withSecret)
	host := &fakeHost{Dedupe: channeltest.Dedupe{OnceErr: errors.New("redis: connection refused")}}
	url := hook(t, s.ch, host)
	if resp := telegramtest.Post(t, url, secret, s.fake.Tap(sentMessage(t, s), "Approve", 555)); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(host.Answers()) != 1 || len(s.fake.Answered()) != 1 {
		t.Fatalf("answers %+v, callback answers %+v", host.Answers(), s.fake.Answered())
	}
	if !strings.Contains(s.logs.String(), "dedupe unavailable") {
		t.Fatal("the outage was not logged")
	}
}
