package telnyx_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/channeltest"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

const (
	apiKey  = "KEY0123456789ABCDEF_secretpart"
	from    = "+14155550100"
	callee  = "+351912344821"
	other   = "+351919990000"
	token   = "tok_abcdefghijklmnopqrstuvwxyz012345" // a decision token as the engine mints it
	public  = "https://ony.example.com"
	console = "https://ony.example.com/console/handoffs/h1"
)

// fakeHost records what the routes asked of Ony.
type fakeHost struct {
	channeltest.Dedupe
	mu       sync.Mutex
	outcomes []string // provider|ref|outcome
	answers  []channel.Answer
	reports  []string // provider|ref|state
	recalls  []string // token|channel
	decide   func(channel.Answer) (store.Handoff, error)
	recall   func(token string) (channel.Notification, error)
}

func (h *fakeHost) Decide(_ context.Context, a channel.Answer) (store.Handoff, error) {
	h.mu.Lock()
	h.answers = append(h.answers, a)
	f := h.decide
	h.mu.Unlock()
	if f != nil {
		return f(a)
	}
	return store.Handoff{}, nil
}

func (h *fakeHost) Report(_ context.Context, provider, ref string, state store.SendState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, provider+"|"+ref+"|"+string(state))
	return nil
}

func (*fakeHost) Link(context.Context, string, string, string) (channel.LinkedPerson, error) {
	return channel.LinkedPerson{}, errors.New("telephony never links")
}

// Outcome records how a call ended, as provider|ref|outcome.
func (h *fakeHost) Outcome(_ context.Context, provider, ref, outcome string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outcomes = append(h.outcomes, provider+"|"+ref+"|"+outcome)
	return nil
}

// Outcomes are the call outcomes recorded so far.
func (h *fakeHost) Outcomes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.outcomes...)
}

func (h *fakeHost) Recall(_ context.Context, tok, ch string) (channel.Notification, error) {
	h.mu.Lock()
	h.recalls = append(h.recalls, tok+"|"+ch)
	f := h.recall
	h.mu.Unlock()
	if f != nil {
		return f(tok)
	}
	if tok != token {
		return channel.Notification{}, problem.New(problem.Invalid, "invalid_decision_token", "that link is not valid")
	}
	return notification(false), nil
}

func (h *fakeHost) Answers() []channel.Answer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]channel.Answer(nil), h.answers...)
}

func (h *fakeHost) Reports() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reports...)
}

func notification(stepUp bool) channel.Notification {
	return channel.Notification{Key: "k1", OrgID: "o1", HandoffID: "h1", Action: "deploy", Risk: "high", Gist: "deploy web to prod",
		Agent: "ci-runner", Options: []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}},
		ConsoleURL: console, Recipient: channel.Recipient{UserID: "u1", Name: "Ana", Address: callee}, Token: token, StepUp: stepUp}
}

// logBuf is a concurrency-safe log sink, to check what is never logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type setup struct {
	fake   *telnyxtest.Server
	driver *telnyxtest.Driver
	p      *telnyx.Provider
	host   *fakeHost
	logs   *logBuf
	waits  *[]time.Duration
	url    string // the server's /hooks/telnyx
}

func newSetup(t testing.TB) setup {
	t.Helper()
	return newSetupWith(t, nil)
}

// newSetupWith is newSetup with the config changed by edit first (when not nil).
func newSetupWith(t testing.TB, edit func(*telnyx.Config)) setup {
	t.Helper()
	fake := telnyxtest.New(t, apiKey)
	d := telnyxtest.NewDriver(t)
	logs := &logBuf{}
	cfg := telnyx.Config{APIKey: apiKey, PublicKey: d.PublicKey, ConnectionID: "conn-1", From: from,
		APIURL: fake.URL(), PublicURL: public, Timeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if edit != nil {
		edit(&cfg)
	}
	p, err := telnyx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	var mu sync.Mutex
	p.SetWait(func(_ context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return nil
	})
	host := &fakeHost{}
	return setup{fake: fake, driver: d, p: p, host: host, logs: logs, waits: &waits, url: hook(t, p, host)}
}

// hook serves both channels' routes as the server mounts them, under /hooks/telnyx.
func hook(t testing.TB, p *telnyx.Provider, host channel.Host) string {
	t.Helper()
	kinds, err := channel.NewKinds(voice.SMSKind, voice.CallKind)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(kinds, p.SMS(), p.Call())
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
	return srv.URL + "/hooks/telnyx"
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	d := telnyxtest.NewDriver(t)
	good := telnyx.Config{APIKey: apiKey, PublicKey: d.PublicKey, ConnectionID: "c", From: from, PublicURL: public}
	if _, err := telnyx.New(good); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mod := range map[string]func(*telnyx.Config){
		"no key":         func(c *telnyx.Config) { c.APIKey = "" },
		"short pub key":  func(c *telnyx.Config) { c.PublicKey = "AAAA" },
		"pub not base64": func(c *telnyx.Config) { c.PublicKey = "not base64!" },
		"no connection":  func(c *telnyx.Config) { c.ConnectionID = "" },
		"bad from":       func(c *telnyx.Config) { c.From = "4155550100" },
		"bad API URL":    func(c *telnyx.Config) { c.APIURL = "ftp://x" },
		"no public URL":  func(c *telnyx.Config) { c.PublicURL = "" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			mod(&cfg)
			_, err := telnyx.New(cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), "4155550100") {
				t.Fatalf("error leaks: %v", err)
			}
		})
	}
}

func TestChannelsNameThemselves(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	if k, p := s.p.SMS().Kind(), s.p.SMS().Provider(); k != "sms" || p != "telnyx" {
		t.Fatalf("sms channel %s/%s", k, p)
	}
	if k, p := s.p.Call().Kind(), s.p.Call().Provider(); k != "call" || p != "telnyx" {
		t.Fatalf("call channel %s/%s", k, p)
	}
}
