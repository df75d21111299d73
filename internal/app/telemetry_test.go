package app_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/bot/telegram/telegramtest"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/internal/testsmtp"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

// dialLog is app.Options.Dial for tests: it records every outbound connection the instance's own
// clients open, and lets through only those to a "<name>.fake.test" host, which it leads to the
// loopback address on the same port (where the test's fakes listen). Nothing resolves those names
// but this dialer, so a client that dialled on its own could not reach its fake at all.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

const fakeSuffix = ".fake.test"

func (d *dialLog) wrap(next app.DialFunc) app.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d.mu.Lock()
		d.addrs = append(d.addrs, addr)
		d.mu.Unlock()
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(host, fakeSuffix) {
			return nil, fmt.Errorf("dial %s: the test lets no connection leave the machine", addr)
		}
		return next(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
}

func (d *dialLog) all() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}

// hosts are the distinct host names dialled.
func (d *dialLog) hosts() []string {
	var out []string
	for _, a := range d.all() {
		h, _, _ := net.SplitHostPort(a)
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// fake renames a fake's loopback URL (http://127.0.0.1:port/...) to name.fake.test.
func fake(t *testing.T, rawURL, name string) string {
	t.Helper()
	if !strings.Contains(rawURL, "127.0.0.1") {
		t.Fatalf("%s: not a loopback URL: %s", name, rawURL)
	}
	return strings.Replace(rawURL, "127.0.0.1", name+fakeSuffix, 1)
}

// flowCanaries are values the main flows hand the instance that must never reach its log.
type flowCanaries struct {
	Title, Summary, Payload, Secret, Comment, Password, WrongPassword string
	Phone, SlackID, TelegramID                                        string
	// Filled in by the flows: the device token, the TOTP secret and the code confirmed with it.
	DeviceToken, TOTPSecret, TOTPCode string
}

func newCanaries() flowCanaries {
	return flowCanaries{Title: "CANARY-TITLE-3e1a", Summary: "CANARY-SUMMARY-9b7c", Payload: "CANARY-PAYLOAD-51fd",
		Secret: "AKIAQ3EGRT7UCANARY5X", Comment: "CANARY-COMMENT-c4d2", Password: "canary-password-7f3e9a61",
		WrongPassword: "canary-wrong-password-0d8b", Phone: "+14155550187", SlackID: "UCANARY01", TelegramID: "8675309001",
	}
}

// mainFlows runs what people and agents do: an admin sets a member's phone and chat ids and a
// password; the member signs in (a wrong password first) and enrols TOTP; the agent creates a
// handoff with canaries in its title, summary and payload and waits; the member approves it through
// the API; the agent's wait returns the decision; every audit log verifies. callback, when set, is
// the handoff's callback URL. before runs after the handoff is created and before it is decided.
func mainFlows(ctx context.Context, t *testing.T, in *testserver.Instance, c *flowCanaries, callback string, before func(id string)) {
	t.Helper()
	a := in.App
	sys := audit.Actor{Kind: "system", ID: "test"}
	for kind, addr := range map[string]string{"phone": c.Phone, "slack": c.SlackID, "telegram": c.TelegramID} {
		if _, err := a.Team.UpdateContact(ctx, sys, in.OrgID, in.Member.Email, org.Contact{Addresses: map[string]*string{kind: &addr}}); err != nil {
			t.Fatalf("contact %s: %v", kind, err)
		}
	}
	if _, err := a.Team.ResetPassword(ctx, sys, in.OrgID, in.Member.Email, c.Password); err != nil {
		t.Fatalf("set password: %v", err)
	}
	person, err := client.New(in.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := person.Login(ctx, in.Member.Email, c.WrongPassword); err == nil {
		t.Fatal("a wrong password signed in")
	}
	if _, err := person.Login(ctx, in.Member.Email, c.Password); err != nil {
		t.Fatalf("login: %v", err)
	}
	enr, err := a.TOTP.Begin(ctx, in.OrgID, in.Member.ID, in.Member.Email)
	if err != nil {
		t.Fatal(err)
	}
	c.TOTPSecret = enr.Secret
	if c.TOTPCode, err = totp.GenerateCode(enr.Secret, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.TOTP.Confirm(ctx, in.OrgID, in.Member.ID, c.TOTPCode); err != nil {
		t.Fatalf("totp confirm: %v", err)
	}

	c.DeviceToken = in.DeviceToken
	agent := in.Agent(t)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.deploy", Title: "Deploy " + c.Title, Summary: c.Summary,
		Payload:     &client.Payload{Kind: "text", Content: c.Payload + " AWS_ACCESS_KEY_ID=" + c.Secret},
		CallbackURL: callback}, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if w, err := agent.WaitOnce(ctx, h.ID, 200*time.Millisecond); err != nil || w.Status != client.StatusPending {
		t.Fatalf("first wait: %+v, %v", w, err)
	}
	if before != nil {
		before(h.ID)
	}
	if _, err := person.Decide(ctx, h.ID, "approve", c.Comment); err != nil {
		t.Fatalf("decide: %v", err)
	}
	got, err := agent.Wait(ctx, h.ID)
	if err != nil || got.Decision == nil || !got.Decision.Approved {
		t.Fatalf("wait: %+v, %v", got, err)
	}
	if _, err := a.Audit.Sequence(ctx, a.Store, in.OrgID); err != nil {
		t.Fatal(err)
	}
	reps, err := a.Audit.VerifyAll(ctx, a.Store)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if !r.OK() {
			t.Errorf("audit %s: %s", r.Origin, r.Problem)
		}
	}
}

// TestNoOutboundConnectionsWithProvidersOff (issue 17) runs a whole instance with every optional
// provider off — no chat, telephony, webhook bridge, summarizer, voice agent, mail or single sign-on
// — through a dialer that records every outbound connection its clients open, goes through the main
// flows (contacts, sign-in, TOTP, a handoff created, waited on, approved, the audit verified), and
// requires that not one connection was opened: on PostgreSQL with Redis, on SQLite with memory,
// whose drivers are the only things that connect.
func TestNoOutboundConnectionsWithProvidersOff(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rec := &dialLog{}
			in := testserver.Start(t, testserver.Options{Dialect: d, Redis: d == "postgres", Dial: rec.wrap}).Seed(t)
			c := newCanaries()
			mainFlows(ctx, t, in, &c, "", nil)
			in.Stop(t) // every job and runner has finished: nothing dials after the check
			if got := rec.all(); len(got) != 0 {
				t.Errorf("with every provider off the instance connected out %d times: %v", len(got), got)
			}
		})
	}
}

// providersEnv is an instance with Slack, Telegram, Twilio, a webhook bridge, the summarizer, SMTP
// and single sign-on on, each configured by a host name only dialLog resolves, and the fakes behind them.
type providersEnv struct {
	in                      *testserver.Instance
	sl                      *slacktest.Server
	tg                      *telegramtest.Server
	tw                      *twiliotest.Server
	relay                   *testsmtp.Relay
	hooks, callbacks, model atomic.Int32
	oidc                    atomic.Int32
	callbackURL             string
	secrets                 []string // the configured credentials
}

// providerHosts are the hosts startProviders configures (without fakeSuffix), sorted.
var providerHosts = []string{"callback", "hook", "model", "oidc", "slack", "smtp", "telegram", "twilio"}

func startProviders(t *testing.T, dialect string, rec *dialLog, logger *slog.Logger) *providersEnv {
	t.Helper()
	e := &providersEnv{sl: slacktest.New(t, e2eSlackToken), tg: telegramtest.New(t, e2eTGToken), tw: twiliotest.New(t, twSID, twToken),
		relay: testsmtp.Start(t, "", "")}
	count := func(n *atomic.Int32, reply string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			n.Add(1)
			if reply != "" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, reply)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	hookSrv, cbSrv := count(&e.hooks, ""), count(&e.callbacks, "")
	// The identity provider answers discovery with nothing usable: start-up's one discovery attempt
	// fails (password sign-in does not need it), but it shows where single sign-on connects.
	oidcSrv := count(&e.oidc, "{}")
	modelSrv := count(&e.model, `{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,`+
		`"message":{"role":"assistant","content":"Deploy to production"},"finish_reason":"stop"}]}`)
	e.callbackURL = fake(t, cbSrv.URL, "callback") + "/cb"
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(key)
	e.secrets = []string{e2eSlackToken, e2eSlackSecret, e2eTGToken, e2eTGSecret, twToken, strings.TrimPrefix(whsec, "whsec_"), "sk-model-CANARY-77ab", "oidc-secret-CANARY-5e2f"}
	ladders := t.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "out.yaml"), []byte(`name: out
default: true
steps:
  - channels: [slack, telegram, sms]
    targets: [role:member]
    providers: {sms: [twilio]}
    wait: 1s
  - channels: [webhook]
    targets: ["webhook:ops"]
    wait: 1h
end: wait
`), 0o600); err != nil {
		t.Fatal(err)
	}
	e.in = testserver.Start(t, testserver.Options{Dialect: dialect, Redis: dialect == "postgres", Dial: rec.wrap, Logger: logger,
		Configure: func(c *config.Config) {
			c.PublicURL = "https://ony.test" // Telegram's webhook needs https; the test reaches the listener directly
			c.Escalation.LaddersDir = ladders
			c.Escalation.Webhooks = []config.Secret{config.Secret("ops=" + fake(t, hookSrv.URL, "hook") + "/in")}
			c.Escalation.WebhookSecret = config.Secret(whsec)
			c.Slack = config.Slack{BotToken: e2eSlackToken, SigningSecret: e2eSlackSecret, APIURL: fake(t, e.sl.URL(), "slack")}
			c.Telegram = config.Telegram{BotToken: e2eTGToken, WebhookSecret: e2eTGSecret, APIURL: fake(t, e.tg.URL(), "telegram")}
			c.Twilio = config.Twilio{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIURL: fake(t, e.tw.URL(), "twilio")}
			c.Summarizer.BaseURL = config.Secret(fake(t, modelSrv.URL, "model") + "/v1")
			c.Summarizer.APIKey = config.Secret("sk-model-CANARY-77ab")
			c.Summarizer.Model = "m"
			c.SMTP = config.SMTP{Host: "smtp" + fakeSuffix, Port: e.relay.Port, From: "ony@ony.test", TLS: "none"}
			c.OIDC = config.OIDC{Issuer: fake(t, oidcSrv.URL, "oidc"), ClientID: "ony", ClientSecret: "oidc-secret-CANARY-5e2f"}
			c.Callbacks.AllowPrivate = true // the guard sees the loopback address the test's dialer leads to
		}}).Seed(t)
	return e
}

// run is mainFlows with every provider exercised: before the decision the rung has reached Slack,
// Telegram and Twilio, the bridge and the model have been called; after it the callback arrives,
// and an invitation goes out by mail.
func (e *providersEnv) run(ctx context.Context, t *testing.T, c *flowCanaries) {
	t.Helper()
	mainFlows(ctx, t, e.in, c, e.callbackURL, func(string) {
		if _, err := e.sl.WaitPosted(ctx, 1); err != nil {
			t.Fatalf("slack: %v", err)
		}
		if _, err := e.tg.WaitSent(ctx, 1); err != nil {
			t.Fatalf("telegram: %v", err)
		}
		if _, err := e.tw.WaitMessages(ctx, 1); err != nil {
			t.Fatalf("twilio: %v", err)
		}
		for e.hooks.Load() == 0 || e.model.Load() == 0 {
			if ctx.Err() != nil {
				t.Fatalf("webhook bridge posts %d, model calls %d", e.hooks.Load(), e.model.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	if _, err := e.in.App.Team.Invite(ctx, audit.Actor{Kind: "system", ID: "test"}, e.in.OrgID, "new@ony.test", "viewer"); err != nil {
		t.Fatalf("invite: %v", err)
	}
	for e.callbacks.Load() == 0 || len(e.relay.Messages()) == 0 {
		if ctx.Err() != nil {
			t.Fatalf("callbacks %d, mails %d", e.callbacks.Load(), len(e.relay.Messages()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOutboundOnlyToConfiguredHosts (issue 17) turns on Slack, Telegram, Twilio, a webhook bridge,
// the summarizer, SMTP and single sign-on (whose discovery runs at start), each configured by a host name only the test's dialer resolves, runs the
// main flows with a callback URL and an invitation by mail, and requires every connection to go to a
// configured host and each configured host to be reached (so every client dials through the
// recorder: one dialling on its own could not have reached its fake).
func TestOutboundOnlyToConfiguredHosts(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rec := &dialLog{}
			e := startProviders(t, d, rec, nil)
			c := newCanaries()
			e.run(ctx, t, &c)
			e.in.Stop(t)
			var got []string
			for _, h := range rec.hosts() {
				got = append(got, strings.TrimSuffix(h, fakeSuffix))
			}
			if !slices.Equal(got, providerHosts) {
				t.Errorf("the instance connected to %v, want exactly the configured %v (every dial: %v)", got, providerHosts, rec.all())
			}
		})
	}
}
