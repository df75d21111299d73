// Package config loads Ony's configuration from a YAML file and ONY_* environment variables,
// validates all of it at once and keeps secrets out of anything printed.
package config

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/netguard"
)

// Config is the effective configuration. Field comments give defaults; the
// rules live in validate.go and the example file documents each option.
type Config struct {
	Listen    string `yaml:"listen"`     // default "127.0.0.1:8080"
	PublicURL string `yaml:"public_url"` // default "http://" + Listen
	// TrustedProxies are the CIDRs (or single addresses) of proxies whose X-Forwarded-For is believed
	// when deciding a client's address; none by default, so the TCP peer is the client.
	TrustedProxies  []string   `yaml:"trusted_proxies"`
	DataDir         string     `yaml:"data_dir"` // default "./ony-data"
	Instance        string     `yaml:"instance"` // audit origin name, default "ony"
	Database        Database   `yaml:"database"`
	Redis           Redis      `yaml:"redis"`
	Log             Log        `yaml:"log"`
	Handoffs        Handoffs   `yaml:"handoffs"`
	Retention       Retention  `yaml:"retention"` // issue 17: how long payloads are kept
	Auth            Auth       `yaml:"auth"`
	Jobs            Jobs       `yaml:"jobs"`
	Callbacks       Callbacks  `yaml:"callbacks"`
	Keyring         Keyring    `yaml:"keyring"`
	Audit           Audit      `yaml:"audit"`
	Risk            Risk       `yaml:"risk"`
	Redact          Redact     `yaml:"redact"`
	Summarizer      Summarizer `yaml:"summarizer"`
	Escalation      Escalation `yaml:"escalation"`
	Bootstrap       Bootstrap  `yaml:"bootstrap"`
	SMTP            SMTP       `yaml:"smtp"`             // identity (issue 13): invite and reset mail
	ShutdownTimeout Duration   `yaml:"shutdown_timeout"` // default 15s
	// OIDC (issue 13, oidc helper): single sign-on; off while Issuer is empty.
	OIDC OIDC `yaml:"oidc"`
	// Slack and Telegram (issue 14): chat channels, each on when its bot token is set.
	Slack    Slack    `yaml:"slack"`
	Telegram Telegram `yaml:"telegram"`
	// Telephony (issue 15): SMS and keypad calls, each provider on when its credentials are set.
	Twilio     Twilio     `yaml:"twilio"`
	SignalWire SignalWire `yaml:"signalwire"`
	Telnyx     Telnyx     `yaml:"telnyx"`
	Plivo      Plivo      `yaml:"plivo"`
	// VoiceAgent (issue 16): a realtime speech model on calls; keypad only while URL is empty.
	VoiceAgent VoiceAgent `yaml:"voice_agent"`
	// Metrics is the operator's listener (issue 12: profiling; issue 17: Prometheus metrics).
	Metrics Metrics `yaml:"metrics"`
}

// Metrics is a second HTTP listener for operators only: Prometheus metrics under /metrics (no personal
// data: every label comes from a closed set) and Go's profiler under /debug/pprof/. It is off by
// default and must never share the public listener, because profiles show what the process holds.
type Metrics struct {
	Listen string `yaml:"listen"` // empty: off
}

// VoiceAgent is the realtime speech model a call talks to (package voice/agent) over the media
// websocket; the keypad stays the safety net.
type VoiceAgent struct {
	URL        string   `yaml:"url"` // wss://api.openai.com/v1/realtime; empty: keypad only
	APIKey     Secret   `yaml:"api_key"`
	Model      string   `yaml:"model"`
	Voice      string   `yaml:"voice"`
	FirstAudio Duration `yaml:"first_audio"` // default 4s: no audio by then → keypad
	MaxCall    Duration `yaml:"max_call"`    // default 5m
	MaxCalls   int      `yaml:"max_calls"`   // per replica, default 50
}

// Enabled reports whether calls talk to a model.
func (v VoiceAgent) Enabled() bool { return v.URL != "" }

// Twilio texts and calls through Twilio's REST API (package voice/twilio).
type Twilio struct {
	AccountSID string `yaml:"account_sid"`
	AuthToken  Secret `yaml:"auth_token"` // also verifies every webhook Twilio sends
	From       string `yaml:"from"`       // E.164 number Ony texts and calls from
	APIURL     string `yaml:"api_url"`    // default https://api.twilio.com
}

// Enabled reports whether Twilio is configured.
func (t Twilio) Enabled() bool { return t.AccountSID != "" || t.AuthToken.Value() != "" }

// SignalWire texts and calls through SignalWire's Twilio-compatible API (package voice/twilio).
type SignalWire struct {
	SpaceURL   string `yaml:"space_url"` // https://example.signalwire.com; also the API base
	ProjectID  string `yaml:"project_id"`
	APIToken   Secret `yaml:"api_token"`
	SigningKey Secret `yaml:"signing_key"` // verifies every webhook SignalWire sends
	From       string `yaml:"from"`
}

// Enabled reports whether SignalWire is configured.
func (s SignalWire) Enabled() bool { return s.ProjectID != "" || s.APIToken.Value() != "" }

// Telnyx texts and calls through Telnyx's v2 API and Call Control (package voice/telnyx).
type Telnyx struct {
	APIKey       Secret `yaml:"api_key"`
	PublicKey    string `yaml:"public_key"` // base64 Ed25519 key that verifies every webhook
	ConnectionID string `yaml:"connection_id"`
	From         string `yaml:"from"`
	APIURL       string `yaml:"api_url"` // default https://api.telnyx.com
}

// Enabled reports whether Telnyx is configured.
func (t Telnyx) Enabled() bool { return t.APIKey.Value() != "" }

// Plivo texts and calls through Plivo's API (package voice/plivo).
type Plivo struct {
	AuthID    string `yaml:"auth_id"`
	AuthToken Secret `yaml:"auth_token"` // also verifies every webhook (signature V3)
	From      string `yaml:"from"`
	APIURL    string `yaml:"api_url"` // default https://api.plivo.com
}

// Enabled reports whether Plivo is configured.
func (p Plivo) Enabled() bool { return p.AuthID != "" || p.AuthToken.Value() != "" }

// Slack is the Slack app Ony posts as (package bot/slack); on when BotToken is set.
type Slack struct {
	BotToken      Secret `yaml:"bot_token"`      // xoxb-…
	SigningSecret Secret `yaml:"signing_secret"` // verifies every request Slack sends
	// AppToken (xapp-…) turns on Socket Mode: Slack's events arrive over a websocket Ony opens, so
	// no public URL is needed.
	AppToken Secret `yaml:"app_token"`
	APIURL   string `yaml:"api_url"` // default https://slack.com/api/
}

// Enabled reports whether Slack is configured.
func (s Slack) Enabled() bool { return s.BotToken.Value() != "" }

// Telegram is the bot Ony talks through (package bot/telegram); on when BotToken is set.
type Telegram struct {
	BotToken Secret `yaml:"bot_token"`
	// WebhookSecret is the secret_token Telegram echoes on every update; unset, Ony long-polls
	// getUpdates instead (one replica only).
	WebhookSecret Secret `yaml:"webhook_secret"`
	APIURL        string `yaml:"api_url"` // default https://api.telegram.org
}

// Enabled reports whether Telegram is configured.
func (t Telegram) Enabled() bool { return t.BotToken.Value() != "" }

// Database: an empty URL means a SQLite file in DataDir.
type Database struct {
	URL Secret `yaml:"url"`
	// MigrateURL, when set, connects as the role that owns the schema and runs migrations; URL's role then
	// gets only the grants it needs (no UPDATE or DELETE on the audit log, no DDL).
	MigrateURL Secret `yaml:"migrate_url"`
	// MaxOpenConns bounds PostgreSQL's pool (SQLite has one writer and a fixed reader pool).
	MaxOpenConns int `yaml:"max_open_conns"`
}

// Redis: an empty URL means in-process coordination (single instance only).
type Redis struct {
	URL    Secret `yaml:"url"`
	Prefix string `yaml:"prefix"`
}

type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

type Handoffs struct {
	DefaultTimeout  Duration `yaml:"default_timeout"`
	MaxTimeout      Duration `yaml:"max_timeout"`
	MaxPayloadBytes int64    `yaml:"max_payload_bytes"`
}

// Retention (issue 17): the instance's default payload retention. An organization's own setting
// (payload_retention_days, in the console and the API) wins when it has one.
type Retention struct {
	// PayloadDays: the daily sweep scrubs the attached payload off handoffs decided, expired or
	// cancelled and created more than this many days ago, in organizations that set no window of their
	// own. 0 (the default) keeps payloads.
	PayloadDays int `yaml:"payload_days"`
}

type Auth struct {
	SessionTTL Duration `yaml:"session_ttl"`
	// SessionIdle ends a session unused this long (issue 13, totp helper).
	SessionIdle             Duration `yaml:"session_idle"`
	LoginAttemptsPerAccount int      `yaml:"login_attempts_per_account"`
	LoginAttemptsPerAddress int      `yaml:"login_attempts_per_address"`
	LoginWindow             Duration `yaml:"login_window"`
	// SecureCookies is a pointer because "not set" must mean "follow the
	// public URL", which a plain bool cannot express.
	SecureCookies *bool `yaml:"secure_cookies"`
}

// CookieSecure reports whether session cookies get the Secure attribute: the
// explicit setting if there is one, otherwise whether the public URL is https.
func (a Auth) CookieSecure(publicURL string) bool {
	if a.SecureCookies != nil {
		return *a.SecureCookies
	}
	u, err := url.Parse(publicURL)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

type Jobs struct {
	PollInterval Duration `yaml:"poll_interval"`
	// Workers is how many jobs run at once; 0 picks by database (JobWorkers). A rung's job spends most
	// of its time waiting on the providers and the commit, so it is many more than the cores.
	Workers int `yaml:"workers"`
}

// JobWorkers is jobs.workers, or when that is 0 the measured best for the database
// (docs/benchmarks.md): 100 on SQLite, whose group commit gathers concurrent jobs' writes into one
// commit (rung lateness with 10,000 pending: p99 2.1–2.3 s at 50, 0.3–0.4 s at 100); 50 on
// PostgreSQL, where 100 drained fewer rungs a second than 50 (470–520 against 647–797).
func (c *Config) JobWorkers() int {
	switch {
	case c.Jobs.Workers > 0:
		return c.Jobs.Workers
	case c.Database.URL.Value() == "":
		return 100
	default:
		return 50
	}
}

// Callbacks: delivery to the callback_url an agent gives. Only public addresses are called unless
// the allow-list says otherwise, because the URL is the agent's choice and Ony sits inside the network.
type Callbacks struct {
	Timeout     Duration `yaml:"timeout"`
	MaxAttempts int      `yaml:"max_attempts"`
	// AllowPrivate admits every non-public address (loopback, private, link-local, …): one machine
	// running Ony and its agents.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowCIDRs admits the non-public addresses in these CIDRs (or single addresses).
	AllowCIDRs []string `yaml:"allow_cidrs"`
}

// Policy is the guard for callback targets these options describe. Load has checked every CIDR; one
// that does not parse (a Config built by hand) admits nothing, which errs on the closed side.
func (c Callbacks) Policy() netguard.Policy {
	p := netguard.Policy{AllowPrivate: c.AllowPrivate}
	for _, s := range c.AllowCIDRs {
		if pr, err := netguard.ParsePrefix(s); err == nil {
			p.Allow = append(p.Allow, pr)
		}
	}
	return p
}

// Keyring: each key is "v<N>:<base64 of 32 bytes>"; none means Ony keeps a
// generated key file in DataDir.
type Keyring struct {
	Keys []Secret `yaml:"keys"`
}

// Audit: checkpoint signing keys in golang.org/x/mod/sumdb/note form ("PRIVATE+KEY+name+hash+base64");
// none means Ony keeps a generated key file in DataDir. Several keys all sign, for rotation.
type Audit struct {
	SigningKeys []Secret `yaml:"signing_keys"`
}

// Risk: an organization policy (YAML, see configs/risk-policy.example.yaml) tuning the built-in rules.
type Risk struct {
	PolicyFile string `yaml:"policy_file"`
}

// Redact: the organization's own secret detectors (YAML, see redact.ParseRules), added to the built-in ones.
type Redact struct {
	RulesFile string `yaml:"rules_file"`
}

// SMTP: the relay invites and password-reset links are mailed through; off when Host is empty (admins
// then copy invite links, and resets are done with `ony admin`). Identity (issue 13).
type SMTP struct {
	Host     string   `yaml:"host"`
	Port     int      `yaml:"port"`
	Username string   `yaml:"username"`
	Password Secret   `yaml:"password"`
	From     string   `yaml:"from"`
	TLS      string   `yaml:"tls"` // starttls | tls | none
	Timeout  Duration `yaml:"timeout"`
}

// Enabled reports whether mail is configured.
func (s SMTP) Enabled() bool { return s.Host != "" }

// Summarizer: an optional OpenAI-compatible chat model that writes the gist; off when BaseURL is empty.
type Summarizer struct {
	BaseURL Secret   `yaml:"base_url"`
	APIKey  Secret   `yaml:"api_key"`
	Model   string   `yaml:"model"`
	Timeout Duration `yaml:"timeout"`
}

// Escalation: the ladders every handoff climbs, the webhook bridges steps can post to, and the caps on
// what reaching people may cost.
type Escalation struct {
	// LaddersDir holds *.yaml ladders loaded at start (GitOps); empty = the built-in console ladder.
	LaddersDir string `yaml:"ladders_dir"`
	// Webhooks are "name=https://url" entries a ladder targets as webhook:<name>. Secret: bridge URLs
	// (Discord's, for one) are credentials.
	Webhooks []Secret `yaml:"webhooks"`
	// WebhookSecret signs every webhook post (Standard Webhooks, "whsec_<base64>").
	WebhookSecret Secret   `yaml:"webhook_secret"`
	SendTimeout   Duration `yaml:"send_timeout"` // default 10s
	Limits        Limits   `yaml:"limits"`
}

// Limits cap SMS and calls; 0 turns a cap off.
type Limits struct {
	SMSPerUserHour   int `yaml:"sms_per_user_hour"`   // default 10
	SMSPerUserDay    int `yaml:"sms_per_user_day"`    // default 40
	CallsPerUserHour int `yaml:"calls_per_user_hour"` // default 6
	CallsPerUserDay  int `yaml:"calls_per_user_day"`  // default 20
	SMSPerOrgDay     int `yaml:"sms_per_org_day"`     // default 500
	CallsPerOrgDay   int `yaml:"calls_per_org_day"`   // default 200
}

// OIDC is single sign-on through an OpenID Connect provider (package auth/oidc). (issue 13, oidc)
type OIDC struct {
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// RedirectURL is registered at the provider; empty = {public_url}/console/sso/callback (Redirect).
	RedirectURL string     `yaml:"redirect_url"`
	Scopes      []string   `yaml:"scopes"` // default openid, email, profile
	Claims      OIDCClaims `yaml:"claims"`
	// Roles maps a group the provider sends to admin, member or viewer; the highest wins.
	Roles map[string]string `yaml:"roles"`
	// DefaultRole applies when Roles maps none of a person's groups ("" = refuse them), and to people
	// created with AllowUnknown when Roles is empty (then it must be set).
	DefaultRole  string `yaml:"default_role"`
	AllowUnknown bool   `yaml:"allow_unknown"`
	// Org is the organization (name or id) SSO signs into; empty = the instance's only one.
	Org string `yaml:"org"`
}

// OIDCClaims name the ID token claims Ony reads.
type OIDCClaims struct {
	Email  string `yaml:"email"`  // default email
	Name   string `yaml:"name"`   // default name
	Groups string `yaml:"groups"` // default groups
}

// Enabled reports whether single sign-on is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// Redirect is the redirect URL to register at the provider: the option, or the console's callback
// under publicURL.
func (o OIDC) Redirect(publicURL string) string {
	if o.RedirectURL != "" {
		return o.RedirectURL
	}
	return strings.TrimSuffix(publicURL, "/") + "/console/sso/callback"
}

type Bootstrap struct {
	OrgName    string `yaml:"org_name"`
	AdminEmail string `yaml:"admin_email"`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	c := defaults()
	c.PublicURL = derivePublicURL(c.Listen)
	return c
}

// defaults leaves PublicURL empty because it follows whatever Listen ends up
// being after the file and the environment are applied.
func defaults() Config {
	return Config{
		Listen:   "127.0.0.1:8080",
		DataDir:  "./ony-data",
		Instance: "ony",
		Database: Database{MaxOpenConns: 20},
		Redis:    Redis{Prefix: "ony:"},
		Log:      Log{Level: "info", Format: "text"},
		Handoffs: Handoffs{
			DefaultTimeout:  Duration(time.Hour),
			MaxTimeout:      Duration(24 * time.Hour),
			MaxPayloadBytes: 1 << 20,
		},
		Auth: Auth{
			SessionTTL:              Duration(12 * time.Hour),
			SessionIdle:             Duration(2 * time.Hour),
			LoginAttemptsPerAccount: 5,
			LoginAttemptsPerAddress: 20,
			LoginWindow:             Duration(15 * time.Minute),
		},
		Jobs:       Jobs{PollInterval: Duration(200 * time.Millisecond)},
		Callbacks:  Callbacks{Timeout: Duration(10 * time.Second), MaxAttempts: 12},
		Summarizer: Summarizer{Timeout: Duration(10 * time.Second)},
		Escalation: Escalation{SendTimeout: Duration(10 * time.Second), Limits: Limits{
			SMSPerUserHour: 10, SMSPerUserDay: 40, CallsPerUserHour: 6, CallsPerUserDay: 20,
			SMSPerOrgDay: 500, CallsPerOrgDay: 200,
		}},
		Bootstrap:       Bootstrap{OrgName: "Default", AdminEmail: "admin@localhost"},
		SMTP:            SMTP{Port: 587, TLS: "starttls", Timeout: Duration(10 * time.Second)},
		ShutdownTimeout: Duration(15 * time.Second),
		Slack:           Slack{APIURL: "https://slack.com/api/"},
		Telegram:        Telegram{APIURL: "https://api.telegram.org"},
		Twilio:          Twilio{APIURL: "https://api.twilio.com"},
		Telnyx:          Telnyx{APIURL: "https://api.telnyx.com"},
		Plivo:           Plivo{APIURL: "https://api.plivo.com"},
		VoiceAgent:      VoiceAgent{FirstAudio: Duration(4 * time.Second), MaxCall: Duration(5 * time.Minute), MaxCalls: 50},
		OIDC: OIDC{ // issue 13, oidc
			Scopes: []string{"openid", "email", "profile"},
			Claims: OIDCClaims{Email: "email", Name: "name", Groups: "groups"},
		},
	}
}

// TrustedProxyPrefixes parses trusted_proxies, which Load has already validated.
func (c *Config) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := netguard.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// derivePublicURL turns a listen address into a URL; a wildcard host such as
// ":8080" becomes localhost so the result is still a usable absolute URL.
func derivePublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Load reads path (may be "" for no file), applies env overrides from getenv
// (os.LookupEnv in production, a map in tests; nil means no environment),
// fills defaults and validates. On any problem it returns a *Errors holding
// every problem, never just the first.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	cfg := defaults()
	l := newLoader(&cfg, path)
	if path != "" {
		l.loadFile()
	}
	if getenv != nil {
		l.applyEnv(getenv)
	}
	l.derivePublicURL()
	l.validate()
	if len(l.errs) > 0 {
		return nil, &Errors{List: l.errs}
	}
	return &cfg, nil
}

// Redacted renders the effective configuration as YAML with every Secret
// masked, for `ony config check` and support requests.
func (c *Config) Redacted() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, err
	}
	if v := lookupNode(&n, "auth", "secure_cookies"); v != nil && c.Auth.SecureCookies == nil {
		v.LineComment = fmt.Sprintf("automatic from public_url: %t", c.Auth.CookieSecure(c.PublicURL))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// EnvNames maps each option path (e.g. "handoffs.max_timeout") to its
// environment variable. Secret options also accept the name plus "_FILE".
func (c *Config) EnvNames() map[string]string {
	out := make(map[string]string)
	for _, lf := range leaves() {
		out[lf.path] = lf.env
	}
	return out
}

// lookupNode finds the value node at a key path in an encoded mapping.
func lookupNode(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// field returns the settable value of a leaf inside cfg.
func field(cfg *Config, lf leaf) reflect.Value {
	return reflect.ValueOf(cfg).Elem().FieldByIndex(lf.index)
}
