package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/channeltest"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

const (
	botToken = "xoxb-test-bot-token"
	secret   = "8f742231b10e8888abcd99yyyzzz85a5"
	member   = "U012AB3CD"
)

// fakeHost records what the routes asked of Ony and answers as told.
type fakeHost struct {
	channeltest.Dedupe
	mu        sync.Mutex
	decides   []channel.Answer
	links     [][3]string
	decideErr error
	linkErr   error
	handoff   store.Handoff
}

func newHost() *fakeHost {
	return &fakeHost{handoff: store.Handoff{Status: store.StatusApproved,
		Options: []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}}}}
}

func (h *fakeHost) Decide(_ context.Context, a channel.Answer) (store.Handoff, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.decides = append(h.decides, a)
	if h.decideErr != nil {
		return store.Handoff{}, h.decideErr
	}
	return h.handoff, nil
}

func (h *fakeHost) Report(context.Context, string, string, store.SendState) error { return nil }

func (h *fakeHost) Link(_ context.Context, code, kind, address string) (channel.LinkedPerson, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.links = append(h.links, [3]string{code, kind, address})
	if h.linkErr != nil {
		return channel.LinkedPerson{}, h.linkErr
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

func (h *fakeHost) decided() []channel.Answer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]channel.Answer(nil), h.decides...)
}

func (h *fakeHost) linked() [][3]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][3]string(nil), h.links...)
}

func newChannel(t *testing.T, fake *slacktest.Server, cfg slack.Config) *slack.Channel {
	t.Helper()
	if cfg.BotToken == "" {
		cfg.BotToken = botToken
	}
	if cfg.SigningSecret == "" {
		cfg.SigningSecret = secret
	}
	cfg.APIURL = fake.URL()
	ch, err := slack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// mount serves ch's routes the way the server does: through the registry, under /hooks/slack/,
// with a 1 MiB body limit.
func mount(t *testing.T, ch *slack.Channel, host channel.Host) http.Handler {
	t.Helper()
	reg, err := channel.NewRegistry(channel.MustKinds(slack.Kind), ch)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := reg.Routes(host)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, m := range routes {
		mux.Handle(m.Pattern, m.Handler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		mux.ServeHTTP(w, r)
	})
}

func notification() channel.Notification {
	return channel.Notification{
		Key: "k1", OrgID: "o1", HandoffID: "h1", Action: "deploy.production", Risk: "critical",
		Gist:       "ship v2 to prod <!channel> <https://evil.example|click> & more",
		ConsoleURL: "https://ony.example/h/h1",
		ExpiresAt:  time.Date(2026, 12, 6, 14, 3, 0, 0, time.UTC),
		Options:    []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}},
		Recipient:  channel.Recipient{UserID: "u1", Name: "Ana", Address: member},
		Token:      "tok_abc123",
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNotifyPostsBlockKitToTheMember(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	d, err := ch.Notify(ctxT(t), notification())
	if err != nil {
		t.Fatal(err)
	}
	posted := fake.Posted()
	if len(posted) != 1 {
		t.Fatalf("posted %d messages, want 1", len(posted))
	}
	m := posted[0]
	if m.Channel != member || d.Ref != m.ChannelID+"/"+m.TS || d.State != store.SendSent {
		t.Fatalf("channel %q, ref %q, state %q; message in %s at %s", m.Channel, d.Ref, d.State, m.ChannelID, m.TS)
	}
	want := []slacktest.Button{
		{ActionID: "ony_decide_1", Text: "Approve", Value: "tok_abc123|approve", Style: "primary"},
		{ActionID: "ony_decide_2", Text: "Deny", Value: "tok_abc123|deny"},
		{ActionID: "ony_console", Text: "Open in console", URL: "https://ony.example/h/h1"},
	}
	if got := m.Buttons(); !equalButtons(got, want) {
		t.Fatalf("buttons %+v, want %+v", got, want)
	}
	for _, s := range []string{m.Text, m.BlockText()} {
		if strings.Contains(s, "<!channel>") || strings.Contains(s, "<https://evil") {
			t.Errorf("agent text reached Slack unescaped: %s", s)
		}
		if !strings.Contains(s, "&lt;!channel&gt;") || !strings.Contains(s, "deploy.production") {
			t.Errorf("gist or action missing: %s", s)
		}
	}
	if !strings.HasPrefix(m.BlockText(), "🔴 critical risk: deploy.production\n") {
		t.Errorf("header lacks the risk emoji and action: %s", m.BlockText())
	}
	if want := fmt.Sprintf("Expires <!date^%d^{date_short_pretty} {time}|2026-12-06 14:03 UTC>", notification().ExpiresAt.Unix()); !strings.Contains(m.BlockText(), want) {
		t.Errorf("expiry not rendered as a Slack date: %s", m.BlockText())
	}
	if !strings.Contains(m.Text, "2026-12-06 14:03 UTC") || !strings.Contains(m.Text, "https://ony.example/h/h1") {
		t.Errorf("fallback text lacks expiry or console link: %s", m.Text)
	}
}

func equalButtons(a, b []slacktest.Button) bool {
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

func TestNotifyRiskEmoji(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	for risk, emoji := range map[string]string{"low": "🟢", "medium": "🟡", "high": "🟠", "critical": "🔴"} {
		n := notification()
		n.Risk = risk
		if _, err := ch.Notify(ctxT(t), n); err != nil {
			t.Fatal(err)
		}
		posted := fake.Posted()
		if m := posted[len(posted)-1]; !strings.HasPrefix(m.BlockText(), emoji+" "+risk+" risk") {
			t.Errorf("%s: header %s", risk, m.BlockText())
		}
	}
}

func TestNotifyTeamChannel(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	n := notification()
	n.Recipient = channel.Recipient{Address: "#incidents"}
	d, err := ch.Notify(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	m := fake.Posted()[0]
	if m.Channel != "#incidents" || !strings.HasPrefix(m.ChannelID, "C") || d.Ref != m.ChannelID+"/"+m.TS {
		t.Fatalf("posted to %q (%s), ref %q", m.Channel, m.ChannelID, d.Ref)
	}
	if len(m.Buttons()) != 3 {
		t.Fatalf("a team post carries the team token's buttons too: %+v", m.Buttons())
	}
}

func TestNotifyStepUpApprovesOnlyInTheConsole(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	n := notification()
	n.StepUp = true
	if _, err := ch.Notify(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	want := []slacktest.Button{
		{ActionID: "ony_console_approve_1", Text: "Approve in console", URL: "https://ony.example/h/h1"},
		{ActionID: "ony_decide_2", Text: "Deny", Value: "tok_abc123|deny"},
		{ActionID: "ony_console", Text: "Open in console", URL: "https://ony.example/h/h1"},
	}
	if got := fake.Posted()[0].Buttons(); !equalButtons(got, want) {
		t.Fatalf("buttons %+v, want %+v", got, want)
	}
	if strings.Contains(fake.Posted()[0].Blocks, "tok_abc123|approve") {
		t.Fatal("a step-up approval can still be tapped in Slack")
	}
}

func TestNotifyRefusals(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	wrong := newChannel(t, fake, slack.Config{BotToken: "xoxb-wrong"})
	if _, err := wrong.Notify(ctxT(t), notification()); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Fatalf("wrong bot token: %v", err)
	}
	ch := newChannel(t, fake, slack.Config{})
	n := notification()
	n.Recipient.Address = ""
	if _, err := ch.Notify(ctxT(t), n); err == nil {
		t.Fatal("no address: want an error")
	}
	n = notification()
	n.Token = strings.Repeat("t", 2000)
	if _, err := ch.Notify(ctxT(t), n); err == nil {
		t.Fatal("a button value over 2000 bytes: want an error")
	}
	if got := len(fake.Posted()); got != 0 {
		t.Fatalf("%d messages posted, want none", got)
	}
}

func TestUpdateRemovesButtonsAndIsRepeatable(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	d, err := ch.Notify(ctxT(t), notification())
	if err != nil {
		t.Fatal(err)
	}
	u := channel.Update{Ref: d.Ref, Status: store.StatusApproved, Text: "Approved by Ana via call, 14:03 CET"}
	for range 2 {
		if err := ch.Update(ctxT(t), u); err != nil {
			t.Fatal(err)
		}
	}
	ups := fake.Updated()
	if len(ups) != 2 {
		t.Fatalf("%d updates, want 2", len(ups))
	}
	m := fake.Posted()[0]
	if len(m.Buttons()) != 0 || m.Text != u.Text || m.BlockText() != u.Text {
		t.Fatalf("after update: text %q, buttons %+v, blocks %s", m.Text, m.Buttons(), m.Blocks)
	}
	// A message Slack no longer has: nothing to rewrite.
	if err := ch.Update(ctxT(t), channel.Update{Ref: "DU012AB3CD/1700000000.999999", Text: "x"}); err != nil {
		t.Fatalf("gone message: %v", err)
	}
	if err := ch.Update(ctxT(t), channel.Update{Ref: "no-slash", Text: "x"}); err == nil {
		t.Fatal("malformed ref: want an error")
	}
}

func TestRateLimitedCallsWaitRetryAfter(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	fake.RateLimit(1, 1)
	start := time.Now()
	if _, err := ch.Notify(ctxT(t), notification()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retried after %v, before Retry-After", el)
	}
	if got := fake.Calls("chat.postMessage"); got != 2 {
		t.Fatalf("%d calls, want 2", got)
	}
}

func TestRateLimitedGivesUp(t *testing.T) {
	t.Parallel()
	t.Run("retries are bounded", func(t *testing.T) {
		t.Parallel()
		fake := slacktest.New(t, botToken)
		ch := newChannel(t, fake, slack.Config{})
		fake.RateLimit(10, 0)
		_, err := ch.Notify(ctxT(t), notification())
		var rl *goslack.RateLimitedError
		if !errors.As(err, &rl) {
			t.Fatalf("want a rate-limit error, got %v", err)
		}
		if got := fake.Calls("chat.postMessage"); got != 3 {
			t.Fatalf("%d calls, want 3 (one try, two retries)", got)
		}
	})
	t.Run("the deadline comes first", func(t *testing.T) {
		t.Parallel()
		fake := slacktest.New(t, botToken)
		ch := newChannel(t, fake, slack.Config{})
		fake.RateLimit(1, 30)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := ch.Notify(ctx, notification())
		var rl *goslack.RateLimitedError
		if !errors.As(err, &rl) || time.Since(start) > 2*time.Second {
			t.Fatalf("want the rate-limit error at once, got %v after %v", err, time.Since(start))
		}
	})
}

func TestLookupByEmail(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	fake.AddUser("ana@acme.example", member)
	ch := newChannel(t, fake, slack.Config{})
	id, err := ch.LookupByEmail(ctxT(t), "ana@acme.example")
	if err != nil || id != member {
		t.Fatalf("lookup: %q, %v", id, err)
	}
	if _, err := ch.LookupByEmail(ctxT(t), "nobody@acme.example"); !errors.Is(err, slack.ErrNotFound) {
		t.Fatalf("unknown email: %v", err)
	}
}

func TestTapDecidesAndAnswersPrivately(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	host := newHost()
	hooks := httptest.NewServer(mount(t, ch, host))
	t.Cleanup(hooks.Close)
	if _, err := ch.Notify(ctxT(t), notification()); err != nil {
		t.Fatal(err)
	}
	approve := fake.Posted()[0].Buttons()[0]
	resp := fake.Interaction(t, hooks.URL+"/hooks/slack/interactions", secret, member, approve.Value)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	rs, err := fake.WaitResponded(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := rs[0]; r.ResponseType != "ephemeral" || r.ReplaceOriginal || !strings.HasPrefix(r.Text, "Recorded: Approve.") {
		t.Fatalf("answer %+v", r)
	}
	want := channel.Answer{Token: "tok_abc123", Option: "approve", Channel: "slack", From: member}
	if got := host.decided(); len(got) != 1 || got[0] != want {
		t.Fatalf("decided %+v, want %+v", got, want)
	}
}

// serve drives one request through the routes synchronously: when it returns, the handler is done.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestTapRefusalShowsTheProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"already final", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call"),
			"this handoff was already approved by Ana via call"},
		{"not linked", problem.New(problem.Forbidden, "not_linked", "your Slack account is not linked to a member of this organization: <link it>"),
			"your Slack account is not linked to a member of this organization: &lt;link it&gt;"},
		{"step-up", problem.New(problem.Forbidden, "stepup_required", "approving a critical handoff needs the console"),
			"approving a critical handoff needs the console"},
		{"other error", errors.New("db down"), "Ony could not record that, try the console."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := slacktest.New(t, botToken)
			ch := newChannel(t, fake, slack.Config{})
			host := newHost()
			host.decideErr = tc.err
			h := mount(t, ch, host)
			body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
			if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body)); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			rs := fake.Responses()
			if len(rs) != 1 || rs[0].Text != tc.want || rs[0].ResponseType != "ephemeral" {
				t.Fatalf("answers %+v, want %q", rs, tc.want)
			}
		})
	}
}

func TestInteractionRefusedChangesNothing(t *testing.T) {
	t.Parallel()
	now := time.Now()
	view := []byte("payload=" + `{"type":"view_submission","user":{"id":"U012AB3CD"}}`)
	cases := []struct {
		name   string
		body   func(respURL string) []byte
		opts   []slacktest.Option
		status int
	}{
		{"forged", nil, []slacktest.Option{slacktest.Forged()}, 401},
		{"unsigned", nil, []slacktest.Option{slacktest.Unsigned()}, 401},
		{"stale", nil, []slacktest.Option{slacktest.At(now.Add(-6 * time.Minute))}, 401},
		{"future", nil, []slacktest.Option{slacktest.At(now.Add(6 * time.Minute))}, 401},
		{"not v0", nil, []slacktest.Option{slacktest.Signature("v1=" + strings.Repeat("ab", 32))}, 401},
		{"short signature", nil, []slacktest.Option{slacktest.Signature("v0=abcd")}, 401},
		{"oversized", func(u string) []byte {
			return append(slacktest.BlockActions(member, "ony_decide_1", "tok|approve", u), []byte("&pad="+strings.Repeat("x", 70<<10))...)
		}, nil, 413},
		{"malformed JSON", func(string) []byte { return []byte("payload=%7B%22type%22%3A") }, nil, 400},
		{"no payload", func(string) []byte { return []byte("foo=bar") }, nil, 400},
		{"bad form", func(string) []byte { return []byte("payload=%zz") }, nil, 400},
		{"wrong payload type", func(string) []byte { return view }, nil, 400},
		{"no user", func(u string) []byte {
			return slacktest.BlockActions("", "ony_decide_1", "tok|approve", u)
		}, nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := slacktest.New(t, botToken)
			ch := newChannel(t, fake, slack.Config{})
			host := newHost()
			h := mount(t, ch, host)
			body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
			if tc.body != nil {
				body = tc.body(fake.ResponseURL())
			}
			rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body, tc.opts...))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := host.decided(); len(got) != 0 {
				t.Fatalf("decided %+v", got)
			}
			if got := fake.Responses(); len(got) != 0 {
				t.Fatalf("answered %+v", got)
			}
		})
	}
}

func TestInteractionNoSigningSecretRefusesAll(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch, err := slack.New(slack.Config{BotToken: botToken, APIURL: fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	host := newHost()
	h := mount(t, ch, host)
	body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
	if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", "", body)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	if len(host.decided()) != 0 {
		t.Fatal("decided without a signing secret")
	}
}

func TestRequestsOutsideTheClocksWindowAreRefused(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{Clock: func() time.Time { return time.Now().Add(10 * time.Minute) }})
	host := newHost()
	h := mount(t, ch, host)
	body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
	if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	if rec := serve(h, slacktest.NewRequest("/hooks/slack/commands", secret, slacktest.SlashCommand(member, "/ony", "link x", ""))); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d", rec.Code)
	}
	if len(host.decided())+len(host.linked()) != 0 {
		t.Fatal("acted on a request outside the window")
	}
}

func TestInteractionReplaysAreDropped(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	host := newHost()
	h := mount(t, ch, host)
	body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
	at := time.Now()
	first := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body, slacktest.At(at)))
	// The same signed request again, as Slack's retry or as a replay inside the window.
	again := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body, slacktest.At(at),
		slacktest.Header("X-Slack-Retry-Num", "1"), slacktest.Header("X-Slack-Retry-Reason", "http_timeout")))
	// The same tap re-signed later (a retry Slack signed afresh).
	resigned := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body, slacktest.At(at.Add(time.Second))))
	for i, rec := range []*httptest.ResponseRecorder{first, again, resigned} {
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, rec.Code)
		}
	}
	if got := host.decided(); len(got) != 1 {
		t.Fatalf("decided %d times, want once", len(got))
	}
	if got := fake.Responses(); len(got) != 1 {
		t.Fatalf("answered %d times, want once", len(got))
	}
}

func TestInteractionDedupeDownStillDecides(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	host := newHost()
	host.OnceErr = errors.New("redis down")
	h := mount(t, ch, host)
	body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", fake.ResponseURL())
	if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body)); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if len(host.decided()) != 1 {
		t.Fatal("a single-use token still decides when dedupe is unavailable")
	}
}

func TestInteractionOtherButtons(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, actionID, value string
		answer                string
	}{
		{"console link", "ony_console", "", ""},
		{"step-up console link", "ony_console_approve_1", "", ""},
		{"value without option", "ony_decide_1", "tok", "That button is not one Ony can read; decide in the console."},
		{"empty token", "ony_decide_1", "|approve", "That button is not one Ony can read; decide in the console."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := slacktest.New(t, botToken)
			ch := newChannel(t, fake, slack.Config{})
			host := newHost()
			h := mount(t, ch, host)
			body := slacktest.BlockActions(member, tc.actionID, tc.value, fake.ResponseURL())
			if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body)); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if len(host.decided()) != 0 {
				t.Fatal("decided")
			}
			rs := fake.Responses()
			switch {
			case tc.answer == "" && len(rs) != 0:
				t.Fatalf("answered %+v", rs)
			case tc.answer != "" && (len(rs) != 1 || rs[0].Text != tc.answer):
				t.Fatalf("answered %+v, want %q", rs, tc.answer)
			}
		})
	}
}

func TestInteractionAnswersOnlySlack(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	other := slacktest.New(t, botToken) // a response_url on another host than the API
	ch := newChannel(t, fake, slack.Config{})
	host := newHost()
	h := mount(t, ch, host)
	body := slacktest.BlockActions(member, "ony_decide_1", "tok|approve", other.ResponseURL())
	if rec := serve(h, slacktest.NewRequest("/hooks/slack/interactions", secret, body)); rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if len(host.decided()) != 1 {
		t.Fatal("the tap was not decided")
	}
	if got := len(other.Responses()) + len(fake.Responses()); got != 0 {
		t.Fatalf("posted %d answers to a response_url that is not Slack's", got)
	}
}

func TestCommands(t *testing.T) {
	t.Parallel()
	usage := "Usage: `/ony link &lt;code&gt;`"
	cases := []struct {
		name, text string
		linkErr    error
		want       string
		link       [3]string
	}{
		{"link", "link abcd-efgh-jkmn", nil, "Linked to Ana at Acme.", [3]string{"abcd-efgh-jkmn", "slack", member}},
		{"link with spaces", "  LINK   abcd-efgh-jkmn ", nil, "Linked to Ana at Acme.", [3]string{"abcd-efgh-jkmn", "slack", member}},
		{"bad code", "link nope", problem.New(problem.Invalid, "invalid_link_code", "that code is wrong, used or expired: make a new one in the console"),
			"that code is wrong, used or expired: make a new one in the console", [3]string{"nope", "slack", member}},
		{"throttled", "link x", problem.New(problem.RateLimited, "too_many_attempts", "too many attempts, try again in 10 minutes"),
			"too many attempts, try again in 10 minutes", [3]string{"x", "slack", member}},
		{"help", "help", nil, usage, [3]string{}},
		{"empty", "", nil, usage, [3]string{}},
		{"link without code", "link", nil, usage, [3]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := slacktest.New(t, botToken)
			ch := newChannel(t, fake, slack.Config{})
			host := newHost()
			host.linkErr = tc.linkErr
			hooks := httptest.NewServer(mount(t, ch, host))
			t.Cleanup(hooks.Close)
			resp := fake.Command(t, hooks.URL+"/hooks/slack/commands", secret, member, tc.text)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var got struct{ ResponseType, Text string }
			if err := json.NewDecoder(resp.Body).Decode(&struct {
				ResponseType *string `json:"response_type"`
				Text         *string `json:"text"`
			}{&got.ResponseType, &got.Text}); err != nil {
				t.Fatal(err)
			}
			if got.ResponseType != "ephemeral" || !strings.HasPrefix(got.Text, tc.want) {
				t.Fatalf("answer %+v, want %q", got, tc.want)
			}
			links := host.linked()
			switch {
			case tc.link == [3]string{} && len(links) != 0:
				t.Fatalf("linked %+v", links)
			case tc.link != [3]string{} && (len(links) != 1 || links[0] != tc.link):
				t.Fatalf("linked %+v, want %+v", links, tc.link)
			}
		})
	}
}

func TestCommandRefusedChangesNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		body   []byte
		opts   []slacktest.Option
		status int
	}{
		{"forged", nil, []slacktest.Option{slacktest.Forged()}, 401},
		{"unsigned", nil, []slacktest.Option{slacktest.Unsigned()}, 401},
		{"stale", nil, []slacktest.Option{slacktest.At(time.Now().Add(-10 * time.Minute))}, 401},
		{"oversized", []byte("command=%2Fony&user_id=U012AB3CD&text=link+x&pad=" + strings.Repeat("x", 65<<10)), nil, 413},
		{"no user", slacktest.SlashCommand("", "/ony", "link abcd", ""), nil, 400},
		{"no command", []byte("user_id=U012AB3CD&text=link+abcd"), nil, 400},
		{"bad form", []byte("user_id=%zz"), nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := slacktest.New(t, botToken)
			ch := newChannel(t, fake, slack.Config{})
			host := newHost()
			h := mount(t, ch, host)
			body := tc.body
			if body == nil {
				body = slacktest.SlashCommand(member, "/ony", "link abcd-efgh-jkmn", "")
			}
			if rec := serve(h, slacktest.NewRequest("/hooks/slack/commands", secret, body, tc.opts...)); rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if got := host.linked(); len(got) != 0 {
				t.Fatalf("linked %+v", got)
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		t.Parallel()
		fake := slacktest.New(t, botToken)
		ch := newChannel(t, fake, slack.Config{})
		host := newHost()
		h := mount(t, ch, host)
		body := slacktest.SlashCommand(member, "/ony", "link abcd-efgh-jkmn", "")
		at := time.Now()
		for range 2 {
			if rec := serve(h, slacktest.NewRequest("/hooks/slack/commands", secret, body, slacktest.At(at))); rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
		}
		if got := host.linked(); len(got) != 1 {
			t.Fatalf("linked %d times, want once", len(got))
		}
	})
}

func TestRun(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	start := time.Now()
	if err := ch.Run(ctxT(t), newHost()); err != nil || time.Since(start) > time.Second {
		t.Fatalf("HTTP mode: Run = %v after %v, want nil at once", err, time.Since(start))
	}
	if got := fake.Calls("apps.connections.open"); got != 0 {
		t.Fatalf("HTTP mode opened Socket Mode %d times", got)
	}
}

func TestNewNeedsABotToken(t *testing.T) {
	t.Parallel()
	if _, err := slack.New(slack.Config{SigningSecret: secret}); err == nil {
		t.Fatal("want an error without a bot token")
	}
	if _, err := slack.New(slack.Config{BotToken: botToken, APIURL: "not a url"}); err == nil {
		t.Fatal("want an error for a relative API URL")
	}
	ch, err := slack.New(slack.Config{BotToken: botToken})
	if err != nil || ch.Kind() != "slack" || ch.Provider() != "slack" {
		t.Fatalf("%v, %v", ch, err)
	}
}

// The agent that asked is shown by its device name, escaped like the gist; without one, nothing.
func TestNotifyShowsTheAgent(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	ch := newChannel(t, fake, slack.Config{})
	n := notification()
	n.Agent = "ci-bot <!here> & " + strings.Repeat("x", 200)
	if _, err := ch.Notify(ctxT(t), n); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Notify(ctxT(t), notification()); err != nil {
		t.Fatal(err)
	}
	posted := fake.Posted()
	for _, s := range []string{posted[0].Text, posted[0].BlockText()} {
		if !strings.Contains(s, "Asked by ci-bot &lt;!here&gt; &amp; xxx") || strings.Contains(s, "<!here>") {
			t.Errorf("agent not shown, or unescaped: %s", s)
		}
		if strings.Contains(s, strings.Repeat("x", 100)) {
			t.Errorf("agent name not capped: %s", s)
		}
	}
	for _, s := range []string{posted[1].Text, posted[1].BlockText()} {
		if strings.Contains(s, "Asked by") {
			t.Errorf("no agent, yet: %s", s)
		}
	}
}
