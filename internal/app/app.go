// Package app wires Ony's parts from a configuration — store, coordination, keyring, services, HTTP
// server and job workers — and tears them down in order. `ony serve` and the end-to-end tests share it.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/oidc"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/summarize"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/redact"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/voice"
)

// NewLogger builds the process logger from configuration.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// OpenStore opens (and migrates) the configured database: PostgreSQL when a URL is set, otherwise the
// SQLite file in the data directory.
func OpenStore(ctx context.Context, c *config.Config, logger *slog.Logger) (store.Store, error) {
	var s *sqlstore.Store
	var err error
	if u := c.Database.URL.Value(); u != "" {
		s, err = postgres.Open(ctx, postgres.Options{URL: u, MigrateURL: c.Database.MigrateURL.Value(),
			MaxConns: c.Database.MaxOpenConns}, logger)
	} else {
		s, err = sqlite.Open(ctx, filepath.Join(c.DataDir, sqlite.FileName), logger)
	}
	if err != nil {
		return nil, err // a nil interface, not an interface holding a nil pointer
	}
	return s, nil
}

// OpenExistingStore opens the configured database for commands that work on an instance `ony serve`
// or `ony migrate` created: it creates nothing and migrates nothing, and when there is no Ony
// database its error says where it looked.
func OpenExistingStore(ctx context.Context, c *config.Config, logger *slog.Logger) (store.Store, error) {
	var s *sqlstore.Store
	var err error
	var where string
	if u := c.Database.URL.Value(); u != "" {
		where = "the PostgreSQL database at " + cmp.Or(postgres.Where(u), "database.url")
		s, err = postgres.OpenExisting(ctx, postgres.Options{URL: u, MaxConns: c.Database.MaxOpenConns}, logger)
	} else {
		path := absPath(filepath.Join(c.DataDir, sqlite.FileName))
		where = "the SQLite database " + path
		s, err = sqlite.OpenExisting(ctx, path, logger)
	}
	switch {
	case errors.Is(err, store.ErrNoSchema) && c.Database.URL.Value() != "":
		return nil, fmt.Errorf("%s has no Ony schema: check database.url (ONY_DATABASE_URL), or create it with `ony migrate`", where)
	case errors.Is(err, store.ErrNoSchema):
		return nil, fmt.Errorf("no Ony database: %s does not exist or holds no Ony schema; run this where `ony serve` runs, "+
			"or point it at the server's data with --config or ONY_DATA_DIR (`ony migrate` creates a new one)", where)
	case errors.Is(err, store.ErrSchemaOld):
		return nil, fmt.Errorf("%s: %w", where, err)
	case err != nil:
		return nil, err
	}
	return s, nil
}

// Migrate is `ony migrate`: it creates or migrates the database and, like a first `ony serve`,
// creates the key files the configuration does not supply, so the admin commands can work on the
// instance before it first serves. It returns the database's dialect.
func Migrate(ctx context.Context, c *config.Config, logger *slog.Logger) (string, error) {
	s, err := OpenStore(ctx, c, logger) // opening migrates, under the lock
	if err != nil {
		return "", err
	}
	defer s.Close()
	if _, err := keyring.LoadOrCreate(c.DataDir, secretValues(c.Keyring.Keys)); err != nil {
		return "", err
	}
	if _, err := NewAuditLog(c, nil); err != nil {
		return "", err
	}
	return s.Dialect(), nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// OpenCoord connects to Redis when configured, otherwise keeps coordination in memory.
func OpenCoord(ctx context.Context, c *config.Config, logger *slog.Logger) (coord.Coord, error) {
	if u := c.Redis.URL.Value(); u != "" {
		coord.RouteDriverLogs(logger)
		r, err := coord.NewRedis(ctx, u, c.Redis.Prefix, logger)
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	return coord.NewMemory(nil), nil
}

// App is a running Ony instance.
type App struct {
	Config     *config.Config
	Log        *slog.Logger
	Store      store.Store
	Coord      coord.Coord
	Keyring    *keyring.Keyring
	Audit      *audit.Log
	Handoffs   *handoff.Service
	Escalation *escalation.Engine
	Sessions   *session.Service
	Server     *server.Server
	// SSO is single sign-on (issue 13, oidc); nil unless oidc.issuer is set.
	SSO *oidc.Lazy
	// Team is the team and identity service: members, invites, resets, settings (issue 13).
	Team    org.Service
	Console *console.Console // console
	// TOTP is the second factor: sign-in, step-up for approvals, `ony admin rekey` (issue 13).
	TOTP *totp.Service
	// Slack and Telegram are the chat channels (issue 14); nil unless their bot token is set.
	Slack    *slack.Channel
	Telegram *telegram.Channel
	// texter sends phone verification codes: the first configured telephony provider (issue 15).
	texter org.Texter
	// Metrics is served on the operator's listener (issue 17); nil (nothing recorded) while
	// metrics.listen is empty.
	Metrics *metrics.Recorder
	// Ops is the operator's listener when the caller bound it before New (ListenOps); nil makes Serve
	// bind metrics.listen itself. Serve's shutdown closes it.
	Ops net.Listener

	http *http.Server
}

// Options are test seams; the zero value is production.
type Options struct {
	Clock func() time.Time
	// HTTPClient replaces the guarded client for outgoing callbacks, and the webhook bridges' client.
	HTTPClient *http.Client
	// Resolver resolves callback hosts (tests that need a name to lead somewhere); nil is the system's.
	// The guard checks whatever address it gives.
	Resolver *net.Resolver
	// Kinds are channel kinds added to the built-in ones (a test's own kind), and Channels are added
	// to the configured channels (simulated providers in `ony demo` and tests).
	Kinds    []channel.Kind
	Channels []channel.Channel
	// ObserveLateness is told how late each escalation step and send job started (benchmarks).
	ObserveLateness func(kind string, late time.Duration)
	// WaitRecheck overrides how often a long-poll re-reads without a notification (tests that prove
	// the notification is what wakes it).
	WaitRecheck time.Duration
	// StepUpPolicy replaces the step-up policy (which risks need a TOTP code to approve); nil reads
	// each org's settings (org.Service.Settings).
	StepUpPolicy func(ctx context.Context, orgID string) ([]string, error)
	// Dial, when set, wraps the dial of every outbound connection the instance's own clients make:
	// provider APIs (webhook bridges, chat and Slack's Socket Mode, telephony), agent callbacks
	// (inside the guard, which still checks each address), the summarizer, the voice agent's model,
	// SMTP and single sign-on. The database and Redis drivers dial on their own. Tests use it to
	// prove where an instance connects, and that it connects nowhere else.
	Dial func(next DialFunc) DialFunc
}

// DialFunc opens one outbound connection.
type DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// providerClient is the client outgoing provider calls use (webhook bridges, chat, telephony): the
// test seam's when set, else one bounded by timeout.
func (o Options) providerClient(timeout time.Duration) *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	return &http.Client{Timeout: timeout, Transport: o.roundTripper()}
}

// dial is a plain dialer's, wrapped by Dial when set.
func (o Options) dial() DialFunc {
	d := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	if o.Dial == nil {
		return d
	}
	return o.Dial(d)
}

// smtpDial is dial when Dial is set, else nil (the mail client's own).
func (o Options) smtpDial() DialFunc {
	if o.Dial == nil {
		return nil
	}
	return o.dial()
}

// wsDialer is a websocket dialer dialling through Dial; nil (the client's own) when Dial is not set.
func (o Options) wsDialer() *websocket.Dialer {
	if o.Dial == nil {
		return nil
	}
	return &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second, NetDialContext: o.dial()}
}

// roundTripper is Go's default transport dialling through Dial; nil (the default itself) when Dial is
// not set.
func (o Options) roundTripper() http.RoundTripper {
	if o.Dial == nil {
		return nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = o.dial()
	return t
}

// New opens everything the configuration names. Close releases it.
func New(ctx context.Context, c *config.Config, logger *slog.Logger, o Options) (_ *App, err error) {
	a := &App{Config: c, Log: logger}
	defer func() {
		if err != nil {
			a.closeResources()
		}
	}()
	// The ladders are configuration the database does not hold: a mistake in them refuses to start
	// before anything is opened or migrated.
	kinds, err := Kinds(o.Kinds...)
	if err != nil {
		return nil, err
	}
	ladders, webhooks, err := Ladders(c, kinds)
	if err != nil {
		return nil, err
	}
	// Compiling the risk rules and the redaction detectors is CPU work of tens of milliseconds on a
	// slow machine; the store's connect and migration checks mostly wait on the database. Side by side,
	// start to ready is shorter by about the rules' time.
	rules := make(chan builtRules, 1)
	go func() { rules <- buildRules(c) }()
	if a.Store, err = OpenStore(ctx, c, logger); err != nil {
		return nil, err
	}
	if a.Keyring, err = keyring.LoadOrCreate(c.DataDir, secretValues(c.Keyring.Keys)); err != nil {
		return nil, err
	}
	if a.Coord, err = OpenCoord(ctx, c, logger); err != nil {
		return nil, err
	}
	if a.Audit, err = NewAuditLog(c, o.Clock); err != nil {
		return nil, err
	}
	if c.Metrics.Listen != "" {
		a.Metrics = metrics.New()
		a.Metrics.WatchJobQueue(func(ctx context.Context) (map[string]int64, error) {
			return a.Store.JobCounts(ctx, metrics.JobStates())
		}, logger)
		a.Audit.SetMetrics(a.Metrics)
	}
	built := <-rules
	if built.err != nil {
		return nil, built.err
	}
	engine, red := built.engine, built.red
	if a.Metrics != nil {
		red = red.Observed(a.Metrics.Redacted)
	}
	var sum summarize.Summarizer
	if base := c.Summarizer.BaseURL.Value(); base != "" {
		// The guard's own timeout bounds redaction; the model's bounds the call.
		model, err := summarize.NewModel(summarize.Config{BaseURL: base, APIKey: c.Summarizer.APIKey.Value(),
			Model: c.Summarizer.Model, Timeout: time.Duration(c.Summarizer.Timeout), Transport: o.roundTripper()},
			redact.NewGuard(red, 2*time.Second), summarize.Deterministic{R: red, MaxRunes: handoff.GistRunes}, logger)
		if err != nil {
			return nil, fmt.Errorf("summarizer: %w", err)
		}
		sum = model
	}
	if a.Escalation, err = NewEscalation(c, a, kinds, ladders, webhooks, handoff.TextRedactor(red, a.Keyring), logger, o); err != nil {
		return nil, err
	}
	// The callback URL is the agent's choice; the guard keeps it off the network Ony runs in.
	callbacks := c.Callbacks.Policy()
	callbackClient := o.HTTPClient
	if callbackClient == nil {
		callbackClient = callbacks.Client(&net.Dialer{Resolver: o.Resolver}, time.Duration(c.Callbacks.Timeout))
		if t, ok := callbackClient.Transport.(*http.Transport); ok && o.Dial != nil {
			t.DialContext = o.Dial(t.DialContext) // the guard's dial, wrapped: its checks still run
		}
	}
	// Issue 13 (totp helper): the second factor. The step-up policy is each org's settings (wire):
	// a.Team is built below, before any request can ask.
	policy := o.StepUpPolicy
	if policy == nil {
		policy = func(ctx context.Context, orgID string) ([]string, error) {
			s, err := a.Team.Settings(ctx, orgID)
			return s.StepUpRisks, err // an empty list: no risk needs a code (the admin chose so)
		}
	}
	a.TOTP = totp.New(totp.Deps{Store: a.Store, Keyring: a.Keyring, Coord: a.Coord, Audit: a.Audit, Logger: logger, Clock: o.Clock,
		Policy: policy}, totp.Config{})
	a.Handoffs = handoff.NewService(handoff.Deps{
		Store: a.Store, Audit: a.Audit, Risk: engine, Redactor: red, Summarizer: sum, Keyring: a.Keyring,
		Coord: a.Coord, Logger: logger, Clock: o.Clock, HTTPClient: callbackClient, Escalator: a.Escalation, Admission: a.Escalation,
		StepUp: a.TOTP, Metrics: a.Metrics,
	}, handoff.Config{
		DefaultTimeout:   time.Duration(c.Handoffs.DefaultTimeout),
		MaxTimeout:       time.Duration(c.Handoffs.MaxTimeout),
		MaxPayloadBytes:  int(c.Handoffs.MaxPayloadBytes),
		PublicURL:        strings.TrimRight(c.PublicURL, "/"),
		CallbackTimeout:  time.Duration(c.Callbacks.Timeout),
		CallbackAttempts: c.Callbacks.MaxAttempts,
		CallbackPolicy:   callbacks,
		WaitRecheck:      o.WaitRecheck,
	})
	a.Sessions = session.New(session.Deps{Store: a.Store, Coord: a.Coord, Logger: logger, Clock: o.Clock, Audit: a.Audit, TOTP: a.TOTP}, session.Config{
		TTL:             time.Duration(c.Auth.SessionTTL),
		Idle:            time.Duration(c.Auth.SessionIdle),
		LoginPerAccount: int64(c.Auth.LoginAttemptsPerAccount),
		LoginPerAddress: int64(c.Auth.LoginAttemptsPerAddress),
		LoginWindow:     time.Duration(c.Auth.LoginWindow),
	})
	a.Server = server.New(a.Handoffs, a.Escalation, a.Audit, a.Sessions, a.Store, a.Coord, logger, server.Config{
		PublicURL:       strings.TrimRight(c.PublicURL, "/"),
		MaxPayloadBytes: c.Handoffs.MaxPayloadBytes,
		SecureCookies:   c.Auth.CookieSecure(c.PublicURL),
		TrustedProxies:  c.TrustedProxyPrefixes(),
		TOTP:            a.TOTP,
		Metrics:         a.Metrics,
	})
	// Team and identity (issue 13).
	a.Team = org.Service{Store: a.Store, Audit: a.Audit, Kinds: a.Escalation.Kinds(), Now: o.Clock,
		PublicURL: strings.TrimRight(c.PublicURL, "/"), Coord: a.Coord, Logger: logger}
	if a.texter != nil {
		a.Team.Texter = a.texter // phone verification codes (issue 15)
	}
	if c.SMTP.Enabled() {
		sender, err := mail.NewSMTP(mail.Config{Host: c.SMTP.Host, Port: c.SMTP.Port, Username: c.SMTP.Username,
			Password: c.SMTP.Password.Value(), From: c.SMTP.From, TLS: c.SMTP.TLS, Timeout: time.Duration(c.SMTP.Timeout),
			Dial: o.smtpDial()})
		if err != nil {
			return nil, fmt.Errorf("smtp: %w", err)
		}
		a.Team.Mail = sender
	}
	a.Server.SetTeam(a.Team)
	if _, err := a.Server.HookRoutes(); err != nil {
		return nil, err
	}
	// Single sign-on (issue 13, oidc): built when oidc.issuer is set; the console mounts
	// /console/sso/login (Begin) and /console/sso/callback (Finish, Resolve, then a session) on it.
	if c.OIDC.Enabled() {
		var client *http.Client
		if o.Dial != nil {
			client = &http.Client{Timeout: 10 * time.Second, Transport: o.roundTripper()}
		}
		a.SSO = NewSSO(ctx, c, a.Keyring, SSODirectory{Store: a.Store, Org: a.Team, Members: a.Team}, logger, o.Clock, client)
	}
	// console: the web console on the same mux; its optional seams are the real services (console.go).
	cdeps := console.Deps{Handoffs: a.Handoffs, Escalation: a.Escalation, Audit: a.Audit,
		Sessions: a.Sessions, Org: a.Team,
		Store: a.Store, Keyring: a.Keyring, Logger: logger, Clock: o.Clock, ClientAddr: a.Server.ClientAddr}
	a.consoleSeams(&cdeps)
	if a.Console, err = console.New(cdeps,
		console.Config{PublicURL: strings.TrimRight(c.PublicURL, "/"), SecureCookies: c.Auth.CookieSecure(c.PublicURL)}); err != nil {
		return nil, err
	}
	a.Server.Mount(a.Console.Register)
	return a, nil
}

// builtinKinds are the channel kinds this build knows, in the order help text lists them. Adding a
// kind is writing its package (docs/channels.md) and listing it here.
var builtinKinds = []channel.Kind{channel.ConsoleKind, webhook.Kind, slack.Kind, telegram.Kind, voice.SMSKind, voice.CallKind}

// builtin checks the kinds on first use, not in every command's initializers (`ony hook` runs on
// each of a coding agent's tool calls and needs none of them).
var builtin = sync.OnceValue(func() *channel.Kinds { return channel.MustKinds(builtinKinds...) })

// BuiltinKinds are the channel kinds this build knows.
func BuiltinKinds() *channel.Kinds { return builtin() }

// Kinds returns the built-in channel kinds plus extra ones.
func Kinds(extra ...channel.Kind) (*channel.Kinds, error) { return builtin().With(extra...) }

// NewEscalation builds the escalation engine: the configured channels, the ladders (checked by
// Ladders, with the webhook URLs they target), and the caps. The channels' inbound routes must not
// clash.
func NewEscalation(c *config.Config, a *App, kinds *channel.Kinds, set *escalation.Set, urls map[string]string,
	redactText func(orgID, s string) string, logger *slog.Logger, o Options) (*escalation.Engine, error) {
	sendTimeout := time.Duration(c.Escalation.SendTimeout)
	chs := []channel.Channel{channel.Console{}}
	if len(urls) > 0 {
		secret, err := config.WebhookSecretBytes(c.Escalation.WebhookSecret.Value())
		if err != nil {
			return nil, fmt.Errorf("escalation.webhook_secret: %w", err)
		}
		chs = append(chs, webhook.New(urls, secret, o.providerClient(sendTimeout), o.Clock))
	}
	var err error
	if a.Slack, a.Telegram, err = chatChannels(c, logger, o, sendTimeout); err != nil {
		return nil, err
	}
	var chat []string
	if a.Slack != nil {
		chs, chat = append(chs, a.Slack), append(chat, slack.Kind.Name)
	}
	if a.Telegram != nil {
		chs, chat = append(chs, a.Telegram), append(chat, telegram.Kind.Name)
	}
	set = set.WithBuiltinChannels(chat...)
	phones, txt, err := telephony(c, logger, o, sendTimeout)
	if err != nil {
		return nil, err
	}
	chs = append(chs, phones...)
	a.texter = txt
	reg, err := channel.NewRegistry(kinds, append(chs, o.Channels...)...)
	if err != nil {
		return nil, err
	}
	for _, l := range set.Ladders() {
		for _, st := range l.Steps {
			for _, k := range st.Channels {
				if len(reg.Providers(k, nil)) == 0 {
					logger.Warn("a ladder uses a channel with no provider configured; those notifications will fail", "ladder", l.Name, "channel", k)
				}
			}
		}
	}
	lim := c.Escalation.Limits
	return escalation.New(escalation.Deps{
		Store: a.Store, Audit: a.Audit, Coord: a.Coord, Channels: reg, Ladders: set,
		Logger: logger, Clock: o.Clock, Redact: redactText, ObserveLateness: o.ObserveLateness, Metrics: a.Metrics,
		// Issue 14: a.TOTP is built after the engine, before any send runs.
		StepUp: func(ctx context.Context, orgID, risk string) (bool, error) {
			return a.TOTP.StepUpRequired(ctx, orgID, risk)
		},
	}, escalation.Config{
		PublicURL:   strings.TrimRight(c.PublicURL, "/"),
		SendTimeout: sendTimeout,
		Limits: map[string]escalation.Limit{
			voice.SMSKind.Meter:  {PerUserHour: lim.SMSPerUserHour, PerUserDay: lim.SMSPerUserDay, PerOrgDay: lim.SMSPerOrgDay},
			voice.CallKind.Meter: {PerUserHour: lim.CallsPerUserHour, PerUserDay: lim.CallsPerUserDay, PerOrgDay: lim.CallsPerOrgDay},
		},
	}), nil
}

// Ladders loads the ladders of escalation.ladders_dir (none configured: the built-in ladder applies)
// and checks every webhook: bridge they target is configured. It returns the bridges by name. `ony
// serve` and `ony config check` share it, so both refuse the same mistakes.
func Ladders(c *config.Config, kinds *channel.Kinds) (*escalation.Set, map[string]string, error) {
	var ladders []*escalation.Ladder
	if c.Escalation.LaddersDir != "" {
		var err error
		if ladders, err = escalation.LoadDir(c.Escalation.LaddersDir, kinds); err != nil {
			return nil, nil, err
		}
	}
	set, err := escalation.NewSet(ladders)
	if err != nil {
		return nil, nil, fmt.Errorf("escalation.ladders_dir: %w", err)
	}
	urls := map[string]string{}
	for _, w := range c.Escalation.Webhooks {
		hook, err := config.ParseWebhook(w.Value()) // validated at load; cannot fail here
		if err != nil {
			return nil, nil, err
		}
		urls[hook.Name] = hook.URL
	}
	var missing []string
	for _, l := range ladders {
		for _, w := range l.TeamTargets(webhook.Kind.Name) {
			if _, ok := urls[w]; !ok {
				missing = append(missing, fmt.Sprintf("ladder %s targets webhook:%s, which escalation.webhooks does not define", l.Name, w))
			}
		}
	}
	if len(missing) > 0 {
		return nil, nil, errors.New(strings.Join(missing, "\n"))
	}
	return set, urls, nil
}

// NewAuditLog loads (or creates) the checkpoint signing keys and returns the audit log.
func NewAuditLog(c *config.Config, clock func() time.Time) (*audit.Log, error) {
	keys, err := audit.LoadOrCreateKeys(c.DataDir, c.Instance, secretValues(c.Audit.SigningKeys))
	if err != nil {
		return nil, err
	}
	return audit.New(keys, c.Instance, KnownReason, clock), nil
}

// OpenAuditLog is NewAuditLog for commands that work on an existing instance: without configured keys
// and a key file it refuses, saying where it looked, instead of creating a key the instance's
// published verifier key does not match.
func OpenAuditLog(c *config.Config) (*audit.Log, error) {
	keys, err := audit.LoadKeys(c.DataDir, secretValues(c.Audit.SigningKeys))
	if errors.Is(err, audit.ErrNoKeyFile) {
		return nil, fmt.Errorf("no audit signing key: %s does not exist and audit.signing_keys (ONY_AUDIT_SIGNING_KEYS) is not set; "+
			"run this where `ony serve` runs, or point it at the server's data with --config or ONY_DATA_DIR",
			absPath(filepath.Join(c.DataDir, audit.KeyFile)))
	}
	if err != nil {
		return nil, err
	}
	return audit.New(keys, c.Instance, KnownReason, nil), nil
}

// builtRules are the risk engine and the redactor, or the first error building them.
type builtRules struct {
	engine *risk.Engine
	red    *redact.Redactor
	err    error
}

func buildRules(c *config.Config) builtRules {
	engine, err := RiskEngine(c)
	if err != nil {
		return builtRules{err: err}
	}
	red, err := Redactor(c)
	return builtRules{engine: engine, red: red, err: err}
}

// RiskEngine builds the risk engine: the built-in rules, tuned by the configured policy file if any.
func RiskEngine(c *config.Config) (*risk.Engine, error) {
	if c.Risk.PolicyFile == "" {
		return risk.Default(), nil
	}
	data, err := os.ReadFile(c.Risk.PolicyFile)
	if err != nil {
		return nil, fmt.Errorf("risk.policy_file: %w", err)
	}
	p, err := risk.ParsePolicy(data, c.Risk.PolicyFile)
	if err != nil {
		return nil, err
	}
	return p.Engine()
}

// Redactor builds the redactor: the built-in detectors plus the configured custom rules.
func Redactor(c *config.Config) (*redact.Redactor, error) {
	if c.Redact.RulesFile == "" {
		return redact.Default(), nil
	}
	data, err := os.ReadFile(c.Redact.RulesFile)
	if err != nil {
		return nil, fmt.Errorf("redact.rules_file: %w", err)
	}
	rules, err := redact.ParseRules(data, c.Redact.RulesFile)
	if err != nil {
		return nil, err
	}
	return redact.New(redact.Options{Custom: rules})
}

// KnownReason admits risk reason codes into audit leaves.
func KnownReason(r string) bool { return risk.KnownReason(risk.Reason(r)) }

func secretValues(ss []config.Secret) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Value()
	}
	return out
}

// StartJobs starts the durable job workers.
func (a *App) StartJobs(ctx context.Context) error {
	w := river.NewWorkers()
	a.Handoffs.RegisterWorkers(w)
	a.Escalation.RegisterWorkers(w)
	a.Audit.RegisterWorkers(w, a.Store)
	a.Sessions.RegisterWorkers(w)
	a.Retention().RegisterWorkers(w) // issue 17: payload retention
	return a.Store.StartJobs(ctx, w, store.JobsConfig{
		Periodic:     a.PeriodicJobs(),
		PollInterval: time.Duration(a.Config.Jobs.PollInterval),
		Workers:      a.Config.JobWorkers(),
		MaxAttempts:  a.Config.Callbacks.MaxAttempts,
	})
}

// Retention is the payload retention sweep (issue 17) over this instance's store and audit log.
func (a *App) Retention() *handoff.Retention {
	return &handoff.Retention{Store: a.Store, Audit: a.Audit, DefaultDays: a.Config.Retention.PayloadDays, Logger: a.Log}
}

// PeriodicJobs are the jobs the elected leader schedules: checkpoints, the session sweep, payload
// retention and the handoff expiry sweep.
func (a *App) PeriodicJobs() []*river.PeriodicJob {
	return slices.Concat(audit.PeriodicJobs(time.Minute), session.PeriodicJobs(), handoff.RetentionPeriodicJobs(),
		handoff.ExpiryPeriodicJobs())
}

// Serve accepts HTTP on l until ctx is done, then shuts down gracefully: long-polls answer at once,
// in-flight requests finish, workers drain, and the store and coordination close.
func (a *App) Serve(ctx context.Context, l net.Listener) error {
	stopOps, err := a.startOps()
	if err != nil {
		l.Close()
		return errors.Join(err, a.Close(ctx))
	}
	a.http = &http.Server{
		Handler:           a.Server.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		// Long-polls last up to a minute; leave room to write the answer.
		WriteTimeout: handoff.MaxWait + 30*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(l) }()
	stopRunners := a.startRunners(ctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if e := a.Escalation; e != nil {
		// The counts since start also go to the log, for instances that do not scrape metrics.
		st := e.Stats()
		a.Log.Info("shutting down", "escalation_sent", st.Sent.Load(), "escalation_failed", st.Failed.Load(),
			"escalation_capped", st.Capped.Load(), "escalation_quiet", st.Quiet.Load(), "escalation_failovers", st.Failovers.Load())
	} else {
		a.Log.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Duration(a.Config.ShutdownTimeout))
	defer cancel()
	a.Server.Drain()
	a.Console.Drain() // console
	stopRunners()
	err = a.http.Shutdown(shutdownCtx)
	stopOps(shutdownCtx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.Log.Warn("http server", "err", err)
	}
	return errors.Join(err, a.Close(shutdownCtx))
}

// Close stops the workers and releases the store and coordination.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.Escalation != nil {
		if err := a.Escalation.Wait(ctx); err != nil {
			a.Log.Warn("first rungs' sends still under way at shutdown; their rescue jobs will make them", "err", err)
		}
	}
	if a.Store != nil {
		errs = append(errs, a.Store.StopJobs(ctx))
	}
	errs = append(errs, a.closeResources())
	return errors.Join(errs...)
}

func (a *App) closeResources() error {
	var errs []error
	if a.Coord != nil {
		errs = append(errs, a.Coord.Close())
		a.Coord = nil
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
		a.Store = nil
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
