package twilio_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/channeltest"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "authtoken-0123456789abcdef0123456"
	signingKey = "PSK_signing-key-0123456789"
	ourNumber  = "+15005550006"
	callee     = "+351912345678"
	public     = "https://ony.example.com"
	token      = "tok_abcdefghijklmnopqrstuvwxyz012345" // a decision token as the engine mints it
	console    = "https://ony.example.com/console/handoffs/h1"
)

var options = []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}}

func notification() channel.Notification {
	return channel.Notification{Key: "k1", OrgID: "o1", HandoffID: "h1", Action: "deploy", Risk: "high",
		Gist: "deploy web to production", Agent: "ci-bot", Options: options, ConsoleURL: console,
		ExpiresAt: time.Date(2026, 12, 6, 14, 3, 0, 0, time.UTC), Token: token,
		Recipient: channel.Recipient{UserID: "u1", Name: "Ana", Address: callee, Timezone: time.UTC}}
}

type report struct {
	Provider, Ref string
	State         store.SendState
}

// fakeHost records what the routes asked of Ony.
type fakeHost struct {
	channeltest.Dedupe
	mu        sync.Mutex
	outcomes  []string // provider|ref|outcome
	answers   []channel.Answer
	recalls   []string // token|channel
	reports   []report
	decide    func(channel.Answer) error
	recallErr error
	reportErr error
	stepUp    bool
}

func (h *fakeHost) Decide(_ context.Context, a channel.Answer) (store.Handoff, error) {
	h.mu.Lock()
	h.answers = append(h.answers, a)
	f := h.decide
	h.mu.Unlock()
	if f != nil {
		if err := f(a); err != nil {
			return store.Handoff{}, err
		}
	}
	return store.Handoff{Options: options}, nil
}

func (h *fakeHost) Report(_ context.Context, provider, ref string, st store.SendState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, report{provider, ref, st})
	return h.reportErr
}

func (*fakeHost) Link(context.Context, string, string, string) (channel.LinkedPerson, error) {
	return channel.LinkedPerson{}, problem.New(problem.Invalid, "invalid_link_code", "no linking on phones")
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
	defer h.mu.Unlock()
	h.recalls = append(h.recalls, tok+"|"+ch)
	if h.recallErr != nil {
		return channel.Notification{}, h.recallErr
	}
	if tok != token || ch != "call" {
		return channel.Notification{}, problem.New(problem.Invalid, "invalid_decision_token", "that call is not one Ony knows")
	}
	n := notification()
	n.StepUp = h.stepUp
	return n, nil
}

func (h *fakeHost) Answers() []channel.Answer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]channel.Answer(nil), h.answers...)
}

func (h *fakeHost) Reports() []report {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]report(nil), h.reports...)
}

func (h *fakeHost) Recalls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.recalls...)
}

// logBuf is a concurrency-safe log sink, to check what is never logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type setup struct {
	p     *twilio.Provider
	fake  *twiliotest.Server
	host  *fakeHost
	drv   *twiliotest.Driver
	logs  *logBuf
	sms   channel.Channel
	call  channel.Channel
	name  string // "twilio" or "signalwire"
	hooks string // public URL of /hooks/{name}
}

// newSetup builds a provider of flavor against a fake API, serves its routes as the server mounts
// them, and gives a driver that signs like the provider.
func newSetup(t testing.TB, flavor twilio.Flavor) *setup {
	t.Helper()
	logs := &logBuf{}
	cfg := twilio.Config{Flavor: flavor, AccountSID: accountSID, AuthToken: authToken, From: ourNumber, PublicURL: public,
		Timeout: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	var fake *twiliotest.Server
	drv := &twiliotest.Driver{Public: public, AccountSID: accountSID}
	if flavor == twilio.SignalWire {
		fake = twiliotest.NewSignalWire(t, accountSID, authToken)
		cfg.SigningKey = signingKey
		drv.Key, drv.Header = signingKey, "X-SignalWire-Signature"
	} else {
		fake = twiliotest.New(t, accountSID, authToken)
		drv.Key = authToken
	}
	cfg.APIURL = fake.URL()
	p, err := twilio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{p: p, fake: fake, host: &fakeHost{}, drv: drv, logs: logs, sms: p.SMS(), call: p.Call(), name: p.Name()}
	kinds, err := channel.NewKinds(voice.SMSKind, voice.CallKind)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := channel.NewRegistry(kinds, s.sms, s.call)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := reg.Routes(s.host)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	drv.Target = srv.URL
	s.hooks = public + "/hooks/" + s.name
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// noSecrets fails when the logs hold a secret, the token or a full phone number.
func noSecrets(t testing.TB, logs string) {
	t.Helper()
	for _, s := range []string{authToken, signingKey, token, callee, "+14155550123"} {
		if bytes.Contains([]byte(logs), []byte(s)) {
			t.Fatalf("logs hold %q:\n%s", s, logs)
		}
	}
}
