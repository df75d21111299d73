package plivo_test

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
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

const (
	authID    = "MAODUZYTQ0Y2FMYJBLOW"
	authToken = "YTk4ZTU2ZmMxZDY0MzNkZWI5ZGRiODQ3NzYzNzA5"
	from      = "+14155550100" // Ony's Plivo number
	ana       = "+351912345678"
	mallory   = "+351919999999"
	token     = "ony_dt_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2Fyc3Q" // a decision token as minted
	console   = "https://ony.example.com/console/handoffs/h1"
)

// fakeHost records what the routes asked of Ony.
type fakeHost struct {
	channeltest.Dedupe
	mu       sync.Mutex
	outcomes []string // provider|ref|outcome
	answers  []channel.Answer
	recalls  []string
	reports  []report
	decide   func(channel.Answer) error
	recall   func(token string) (channel.Notification, error)
	report   func(ref string) error
}

type report struct {
	Provider, Ref string
	State         store.SendState
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
	return store.Handoff{}, nil
}

func (h *fakeHost) Report(_ context.Context, provider, ref string, state store.SendState) error {
	h.mu.Lock()
	h.reports = append(h.reports, report{provider, ref, state})
	f := h.report
	h.mu.Unlock()
	if f != nil {
		return f(ref)
	}
	return nil
}

func (*fakeHost) Link(context.Context, string, string, string) (channel.LinkedPerson, error) {
	panic("plivo never links")
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

func (h *fakeHost) Recall(_ context.Context, tok, kind string) (channel.Notification, error) {
	h.mu.Lock()
	h.recalls = append(h.recalls, tok+"|"+kind)
	f := h.recall
	h.mu.Unlock()
	if f != nil {
		return f(tok)
	}
	return notification(ana), nil
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

func notification(to string) channel.Notification {
	return channel.Notification{Key: "k1", OrgID: "o1", HandoffID: "h1", Action: "deploy.prod", Risk: "high",
		Gist: "deploy web 1.4 to prod", Agent: "ci-runner", ConsoleURL: console, Token: token,
		Options:   []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}},
		Recipient: channel.Recipient{UserID: "u1", Name: "Ana", Address: to}}
}

// logBuf is a concurrency-safe log sink, to check what is never logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type setup struct {
	fake  *plivotest.Server
	drv   *plivotest.Driver
	p     *plivo.Provider
	sms   channel.Channel
	call  channel.Channel
	host  *fakeHost
	hooks string // public base of the routes: .../hooks/plivo
	logs  *logBuf
}

// newSetup builds the provider against a fake API and serves its routes as the server mounts them,
// at the public URL the provider was configured with, so the driver's signatures cover real URLs.
func newSetup(t testing.TB) setup {
	t.Helper()
	return newSetupWith(t, nil)
}

// newSetupWith is newSetup with the provider's config changed by configure first.
func newSetupWith(t testing.TB, configure func(*plivo.Config)) setup {
	t.Helper()
	fake := plivotest.New(t, authID, authToken)
	var handler http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	logs := &logBuf{}
	cfg := plivo.Config{AuthID: authID, AuthToken: authToken, From: from, APIURL: fake.URL(),
		PublicURL: srv.URL, Timeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if configure != nil {
		configure(&cfg)
	}
	p, err := plivo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := setup{fake: fake, drv: plivotest.NewDriver(t, authToken), p: p, sms: p.SMS(), call: p.Call(),
		host: &fakeHost{}, hooks: srv.URL + "/hooks/plivo", logs: logs}
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
	handler = mux
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
