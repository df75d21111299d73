package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/internal/netguard"
)

const (
	day          = 24 * time.Hour
	maxPayload   = 16 << 20
	keyringBytes = 32
)

// checkPrefixes checks a list of CIDRs or addresses, each at its own index.
func (l *loader) checkPrefixes(path string, list []string) {
	for i, s := range list {
		if _, err := netguard.ParsePrefix(s); err != nil {
			l.fail(fmt.Sprintf("%s[%d]", path, i), "%s", err)
		}
	}
}

// validate checks every option and records every failure rather than
// stopping, so one run shows the operator all of them.
func (l *loader) validate() {
	c := l.cfg
	// A URL derived from a bad listen address would only repeat that error.
	if listenOK := l.checkListen("listen", c.Listen); listenOK || !l.derivedURL {
		l.checkPublicURL(c.PublicURL)
	}
	l.checkMetrics(c.Metrics, c.Listen)
	l.checkPrefixes("trusted_proxies", c.TrustedProxies)
	l.nonEmpty("data_dir", c.DataDir)
	l.checkInstance(c.Instance)

	l.checkURLScheme("database.url", c.Database.URL, "postgres://", "postgresql://")
	l.checkURLScheme("database.migrate_url", c.Database.MigrateURL, "postgres://", "postgresql://")
	if c.Database.MigrateURL.Value() != "" && c.Database.URL.Value() == "" {
		l.fail("database.migrate_url", "needs database.url: it only applies to PostgreSQL")
	}
	l.intRange("database.max_open_conns", int64(c.Database.MaxOpenConns), 1, 1000)
	l.checkURLScheme("redis.url", c.Redis.URL, "redis://", "rediss://")

	l.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	l.oneOf("log.format", c.Log.Format, "text", "json")

	l.durationRange("handoffs.default_timeout", c.Handoffs.DefaultTimeout, 10*time.Second, 30*day)
	l.checkMaxTimeout(c.Handoffs)
	l.intRange("retention.payload_days", int64(c.Retention.PayloadDays), 0, 3650)
	l.intRange("handoffs.max_payload_bytes", c.Handoffs.MaxPayloadBytes, 1, maxPayload)

	l.durationRange("auth.session_ttl", c.Auth.SessionTTL, time.Minute, 365*day)
	l.durationRange("auth.session_idle", c.Auth.SessionIdle, time.Minute, 365*day)
	l.intRange("auth.login_attempts_per_account", int64(c.Auth.LoginAttemptsPerAccount), 1, 1000)
	l.intRange("auth.login_attempts_per_address", int64(c.Auth.LoginAttemptsPerAddress), 1, 100000)
	l.durationRange("auth.login_window", c.Auth.LoginWindow, time.Second, day)

	l.durationRange("jobs.poll_interval", c.Jobs.PollInterval, 10*time.Millisecond, 10*time.Second)
	l.intRange("jobs.workers", int64(c.Jobs.Workers), 0, 1000)

	l.durationRange("callbacks.timeout", c.Callbacks.Timeout, time.Second, 5*time.Minute)
	l.intRange("callbacks.max_attempts", int64(c.Callbacks.MaxAttempts), 1, 50)
	l.checkPrefixes("callbacks.allow_cidrs", c.Callbacks.AllowCIDRs)

	l.checkKeyring(c.Keyring.Keys)
	for i, k := range c.Audit.SigningKeys {
		// note.NewSigner is the real parser (the base64 part may itself hold '+'); its error is not
		// shown because it could quote the key.
		if _, err := note.NewSigner(strings.TrimSpace(k.Value())); err != nil {
			l.fail(fmt.Sprintf("audit.signing_keys[%d]", i), `must be a note signing key "PRIVATE+KEY+<name>+<hash>+<base64>" (see ony audit keygen)`)
		}
	}

	l.checkURLScheme("summarizer.base_url", c.Summarizer.BaseURL, "http://", "https://")
	l.durationRange("summarizer.timeout", c.Summarizer.Timeout, 100*time.Millisecond, 2*time.Minute)
	if c.Summarizer.BaseURL.Value() != "" && strings.TrimSpace(c.Summarizer.Model) == "" {
		l.fail("summarizer.model", "must be set when summarizer.base_url is")
	}

	l.checkEscalation(c.Escalation)

	l.nonEmpty("bootstrap.org_name", strings.TrimSpace(c.Bootstrap.OrgName))
	l.checkEmail("bootstrap.admin_email", c.Bootstrap.AdminEmail)

	l.durationRange("shutdown_timeout", c.ShutdownTimeout, time.Second, time.Hour)

	l.checkOIDC(c.OIDC) // issue 13, oidc
	l.checkSMTP(c.SMTP) // identity (issue 13)
	l.checkChat(c)
	l.checkTelephony(c)
	l.checkVoiceAgent(c.VoiceAgent)
}

// checkVoiceAgent reports every mistake of the voice_agent section; the key is never quoted.
func (l *loader) checkVoiceAgent(v VoiceAgent) {
	l.durationRange("voice_agent.first_audio", v.FirstAudio, 500*time.Millisecond, 30*time.Second)
	l.durationRange("voice_agent.max_call", v.MaxCall, 30*time.Second, time.Hour)
	l.intRange("voice_agent.max_calls", int64(v.MaxCalls), 1, 10000)
	if !v.Enabled() {
		l.orphans("voice_agent.url: calls use the keypad alone without it", map[string]bool{"voice_agent.api_key": v.APIKey.Value() != ""})
		return
	}
	u, err := url.Parse(v.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "wss" && u.Scheme != "ws"):
		l.fail("voice_agent.url", "must be a realtime websocket URL such as wss://api.openai.com/v1/realtime")
	case u.Scheme == "ws" && !loopbackHost(u.Hostname()):
		l.fail("voice_agent.url", "must use wss (ws is accepted only for localhost)")
	case u.User != nil:
		l.fail("voice_agent.url", "must not contain a user name or password; set voice_agent.api_key")
	}
}

var (
	e164RE        = lazyregexp.New(`^\+[1-9][0-9]{6,14}$`)
	twilioSIDRE   = lazyregexp.New(`^AC[0-9a-fA-F]{32}$`)
	uuidRE        = lazyregexp.New(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	plivoAuthIDRE = lazyregexp.New(`^[A-Z0-9]{20}$`)
)

// orphans reports each option that is set although what turns its section on is not.
func (l *loader) orphans(needs string, set map[string]bool) {
	for path, on := range set {
		if on {
			l.fail(path, "needs %s", needs)
		}
	}
}

// checkTelephony reports every mistake of the telephony providers' sections: each is off until its
// credentials are set, and then needs all of them. Secrets and numbers are never quoted.
func (l *loader) checkTelephony(c *Config) {
	from := func(path, v string) {
		if !e164RE.MatchString(v) {
			l.fail(path, "must be the E.164 number Ony texts and calls from, e.g. +14155550123")
		}
	}
	if t := c.Twilio; t.Enabled() {
		if !twilioSIDRE.MatchString(t.AccountSID) {
			l.fail("twilio.account_sid", "must be the Account SID: AC followed by 32 hex digits (Twilio console → Account info)")
		}
		if t.AuthToken.Value() == "" {
			l.addAt(l.posOf("twilio.account_sid"), "twilio.auth_token", "must be set when twilio.account_sid is: it authenticates Ony and verifies Twilio's webhooks")
		}
		from("twilio.from", t.From)
	}
	l.checkHTTPURL("twilio.api_url", c.Twilio.APIURL, true)
	if s := c.SignalWire; s.Enabled() {
		if s.SpaceURL == "" {
			l.fail("signalwire.space_url", "must be your space's URL, https://<space>.signalwire.com")
		} else {
			l.checkHTTPURL("signalwire.space_url", s.SpaceURL, true)
		}
		if !uuidRE.MatchString(s.ProjectID) {
			l.fail("signalwire.project_id", "must be the Project ID, a UUID (SignalWire: API → Project)")
		}
		if s.APIToken.Value() == "" {
			l.addAt(l.posOf("signalwire.project_id"), "signalwire.api_token", "must be set when signalwire.project_id is")
		}
		if s.SigningKey.Value() == "" {
			l.addAt(l.posOf("signalwire.project_id"), "signalwire.signing_key", "must be set when signalwire.project_id is: it verifies SignalWire's webhooks")
		}
		from("signalwire.from", s.From)
	} else {
		l.orphans("signalwire.project_id and signalwire.api_token: SignalWire is off without them", map[string]bool{
			"signalwire.space_url": c.SignalWire.SpaceURL != "", "signalwire.signing_key": c.SignalWire.SigningKey.Value() != "", "signalwire.from": c.SignalWire.From != ""})
	}
	if t := c.Telnyx; t.Enabled() {
		if k, err := base64.StdEncoding.DecodeString(t.PublicKey); err != nil || len(k) != 32 {
			l.fail("telnyx.public_key", "must be the base64 Ed25519 public key that verifies Telnyx's webhooks (Telnyx portal → Keys & Credentials → Public Key)")
		}
		if strings.TrimSpace(t.ConnectionID) == "" {
			l.addAt(l.posOf("telnyx.api_key"), "telnyx.connection_id", "must be set when telnyx.api_key is: calls are placed on this Call Control application")
		}
		from("telnyx.from", t.From)
	} else {
		l.orphans("telnyx.api_key: Telnyx is off without it", map[string]bool{
			"telnyx.public_key": c.Telnyx.PublicKey != "", "telnyx.connection_id": c.Telnyx.ConnectionID != "", "telnyx.from": c.Telnyx.From != ""})
	}
	l.checkHTTPURL("telnyx.api_url", c.Telnyx.APIURL, true)
	if p := c.Plivo; p.Enabled() {
		if !plivoAuthIDRE.MatchString(p.AuthID) {
			l.fail("plivo.auth_id", "must be the Auth ID: 20 capital letters and digits (Plivo console → Overview)")
		}
		if p.AuthToken.Value() == "" {
			l.addAt(l.posOf("plivo.auth_id"), "plivo.auth_token", "must be set when plivo.auth_id is: it authenticates Ony and verifies Plivo's webhooks")
		}
		from("plivo.from", p.From)
	}
	l.checkHTTPURL("plivo.api_url", c.Plivo.APIURL, true)
}

var (
	slackTokenRE     = lazyregexp.New(`^xoxb-[A-Za-z0-9-]{8,}$`)
	slackAppTokenRE  = lazyregexp.New(`^xapp-[A-Za-z0-9-]{8,}$`)
	telegramTokenRE  = lazyregexp.New(`^[0-9]{3,20}:[A-Za-z0-9_-]{20,}$`)
	telegramSecretRE = lazyregexp.New(`^[A-Za-z0-9_-]{1,256}$`)
)

// checkChat reports every mistake of the slack and telegram sections; tokens are never quoted.
func (l *loader) checkChat(c *Config) {
	s := c.Slack
	l.checkHTTPURL("slack.api_url", s.APIURL, true)
	if !strings.HasSuffix(s.APIURL, "/") {
		l.fail("slack.api_url", "must end with / (the default is https://slack.com/api/)")
	}
	if !s.Enabled() {
		for path, set := range map[string]bool{"slack.signing_secret": s.SigningSecret.Value() != "", "slack.app_token": s.AppToken.Value() != ""} {
			if set {
				l.fail(path, "needs slack.bot_token: Slack is off without it")
			}
		}
	} else {
		if !slackTokenRE.MatchString(s.BotToken.Value()) {
			l.fail("slack.bot_token", "must be a bot token starting xoxb- (Slack: OAuth & Permissions → Bot User OAuth Token)")
		}
		if s.SigningSecret.Value() == "" {
			l.addAt(l.posOf("slack.bot_token"), "slack.signing_secret", "must be set when slack.bot_token is: every request Slack sends is verified with it (Slack: Basic Information → Signing Secret)")
		}
		if v := s.AppToken.Value(); v != "" && !slackAppTokenRE.MatchString(v) {
			l.fail("slack.app_token", "must be an app-level token starting xapp- (Slack: Basic Information → App-Level Tokens, scope connections:write)")
		}
	}
	t := c.Telegram
	l.checkHTTPURL("telegram.api_url", t.APIURL, true)
	if strings.HasSuffix(t.APIURL, "/") {
		l.fail("telegram.api_url", "must not end with / (Ony calls {api_url}/bot{token}/{method})")
	}
	if !t.Enabled() {
		if t.WebhookSecret.Value() != "" {
			l.fail("telegram.webhook_secret", "needs telegram.bot_token: Telegram is off without it")
		}
		return
	}
	if !telegramTokenRE.MatchString(t.BotToken.Value()) {
		l.fail("telegram.bot_token", "must be a bot token as @BotFather gives it: <digits>:<letters, digits, _ or ->")
	}
	if v := t.WebhookSecret.Value(); v != "" {
		if !telegramSecretRE.MatchString(v) {
			l.fail("telegram.webhook_secret", "must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's secret_token)")
		}
		if !strings.HasPrefix(c.PublicURL, "https://") {
			l.fail("telegram.webhook_secret", "needs an https public_url: Telegram posts updates only to https (leave the secret unset to long-poll instead)")
		}
	}
}

// checkSMTP reports every mistake of the smtp section; the password is never quoted.
func (l *loader) checkSMTP(s SMTP) {
	l.intRange("smtp.port", int64(s.Port), 1, 65535)
	l.oneOf("smtp.tls", s.TLS, "starttls", "tls", "none")
	l.durationRange("smtp.timeout", s.Timeout, time.Second, 5*time.Minute)
	if strings.ContainsAny(s.Host, " /:@") {
		l.fail("smtp.host", "must be a host name or address, without scheme, port or user")
	}
	if !s.Enabled() {
		for path, set := range map[string]bool{"smtp.from": s.From != "", "smtp.username": s.Username != "", "smtp.password": s.Password.Value() != ""} {
			if set {
				l.fail(path, "needs smtp.host")
			}
		}
		return
	}
	if a, err := mail.ParseAddress(s.From); err != nil || a.Address == "" {
		l.fail("smtp.from", "must be an email address such as ony@example.com or \"Ony <ony@example.com>\"")
	}
	if s.Username != "" && s.Password.Value() == "" {
		l.fail("smtp.username", "needs smtp.password (set both, or neither)")
	}
	if s.Username == "" && s.Password.Value() != "" {
		l.fail("smtp.password", "needs smtp.username (set both, or neither)")
	}
	if s.TLS == "none" && s.Password.Value() != "" && s.Host != "localhost" && s.Host != "127.0.0.1" && s.Host != "::1" {
		l.fail("smtp.tls", "must not be none when a password is sent to a relay other than localhost")
	}
}

func (l *loader) nonEmpty(path, v string) {
	if v == "" {
		l.fail(path, "must not be empty")
	}
}

func (l *loader) oneOf(path, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	l.fail(path, "must be one of %s", strings.Join(allowed, ", "))
}

func (l *loader) intRange(path string, v, lo, hi int64) {
	if v < lo || v > hi {
		l.fail(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (l *loader) durationRange(path string, d Duration, lo, hi time.Duration) {
	if v := time.Duration(d); v < lo || v > hi {
		l.fail(path, "must be between %s and %s, got %s", short(lo), short(hi), short(v))
	}
}

// checkMaxTimeout reports against max_timeout, the value that bounds the other.
func (l *loader) checkMaxTimeout(h Handoffs) {
	const path = "handoffs.max_timeout"
	switch maxT := time.Duration(h.MaxTimeout); {
	case maxT < time.Duration(h.DefaultTimeout):
		l.fail(path, "must be at least handoffs.default_timeout (%s)", short(time.Duration(h.DefaultTimeout)))
	case maxT > 30*day:
		l.fail(path, "must be at most %s, got %s", short(30*day), short(maxT))
	}
}

// short prints 1h instead of time.Duration's 1h0m0s, as the example file writes durations: for messages
// and the configuration reference.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (l *loader) checkListen(path, v string) bool {
	if _, port, err := net.SplitHostPort(v); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return true
		}
	}
	l.fail(path, "must be host:port with a numeric port, such as 127.0.0.1:8080")
	return false
}

// checkMetrics keeps the operator's listener apart from the public one.
func (l *loader) checkMetrics(m Metrics, listen string) {
	if m.Listen == "" || !l.checkListen("metrics.listen", m.Listen) {
		return
	}
	if m.Listen == listen {
		l.fail("metrics.listen", "must differ from listen: profiles are for operators, not for the public listener")
	}
}

// checkPublicURL keeps the URL usable as a base for links: absolute, http(s),
// and nothing after the path that would break concatenation.
func (l *loader) checkPublicURL(v string) {
	const path = "public_url"
	u, err := url.Parse(v)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		l.fail(path, "must be an absolute URL such as https://ony.example.com")
	case u.Scheme != "http" && u.Scheme != "https":
		l.fail(path, "must use http or https")
	case u.RawQuery != "" || u.ForceQuery:
		l.fail(path, "must not have a query")
	case u.Fragment != "" || strings.Contains(v, "#"):
		l.fail(path, "must not have a fragment")
	case u.User != nil:
		l.fail(path, "must not contain a user name or password")
	}
}

func (l *loader) checkInstance(v string) {
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			l.fail("instance", "may contain only a-z, 0-9, '.' and '-'")
			return
		}
	}
	l.nonEmpty("instance", v)
}

// checkURLScheme looks only at the prefix and never prints the value, since
// connection URLs usually embed a password.
func (l *loader) checkURLScheme(path string, v Secret, schemes ...string) {
	s := v.Value()
	if s == "" {
		return
	}
	for _, p := range schemes {
		if strings.HasPrefix(s, p) {
			return
		}
	}
	l.fail(path, "must start with %s", strings.Join(schemes, " or "))
}

// checkKeyring validates the key format without ever echoing key material;
// only the version number, which is not secret, may appear in messages.
func (l *loader) checkKeyring(keys []Secret) {
	seen := make(map[int]int)
	for i, k := range keys {
		path := fmt.Sprintf("keyring.keys[%d]", i)
		ver, msg := parseKey(k.Value())
		if msg != "" {
			l.fail(path, "%s", msg)
			continue
		}
		if first, dup := seen[ver]; dup {
			l.fail(path, "version v%d is already used by keyring.keys[%d]", ver, first)
			continue
		}
		seen[ver] = i
	}
}

func parseKey(s string) (int, string) {
	const format = `must have the form "v<N>:<base64 of 32 bytes>"`
	ver, material, ok := strings.Cut(s, ":")
	if !ok || len(ver) < 2 || ver[0] != 'v' {
		return 0, format
	}
	n, err := strconv.Atoi(ver[1:])
	if err != nil || n < 1 || ver[1] == '0' || ver[1] == '+' {
		return 0, format + " with N a positive integer"
	}
	raw, err := base64.StdEncoding.DecodeString(material)
	if err != nil {
		return 0, format + "; the key is not valid standard base64"
	}
	if len(raw) != keyringBytes {
		return 0, fmt.Sprintf("%s; the key decodes to %d bytes", format, len(raw))
	}
	return n, ""
}

// checkEmail wants a bare address; a display name ("Ann <a@b>") is not an
// address we can log in with.
func (l *loader) checkEmail(path, v string) {
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" {
		l.fail(path, "must be an email address such as admin@example.com")
	}
}

var webhookNameRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Webhook is one escalation.webhooks entry.
type Webhook struct {
	Name string
	URL  string
}

// ParseWebhook splits a "name=https://url" entry. Its error never quotes the URL, which may be a
// credential.
func ParseWebhook(s string) (Webhook, error) {
	name, raw, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || !webhookNameRE.MatchString(name) {
		return Webhook{}, fmt.Errorf(`must be "name=https://url" with a lowercase name (letters, digits, _ and -)`)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return Webhook{}, fmt.Errorf("webhook %q: the URL must be an absolute http(s) URL", name)
	}
	return Webhook{Name: name, URL: raw}, nil
}

func (l *loader) checkEscalation(e Escalation) {
	seen := map[string]int{}
	for i, w := range e.Webhooks {
		path := fmt.Sprintf("escalation.webhooks[%d]", i)
		hook, err := ParseWebhook(w.Value())
		if err != nil {
			l.fail(path, "%s", err)
			continue
		}
		if first, dup := seen[hook.Name]; dup {
			l.fail(path, "webhook %q is already defined by escalation.webhooks[%d]", hook.Name, first)
			continue
		}
		seen[hook.Name] = i
	}
	if sec := e.WebhookSecret.Value(); sec != "" {
		if _, err := WebhookSecretBytes(sec); err != nil {
			l.fail("escalation.webhook_secret", "%s", err)
		}
	} else if len(e.Webhooks) > 0 {
		l.fail("escalation.webhook_secret", "must be set when escalation.webhooks is: every post is signed")
	}
	l.durationRange("escalation.send_timeout", e.SendTimeout, time.Second, 2*time.Minute)
	for _, lim := range []struct {
		path string
		v    int
	}{
		{"sms_per_user_hour", e.Limits.SMSPerUserHour}, {"sms_per_user_day", e.Limits.SMSPerUserDay},
		{"calls_per_user_hour", e.Limits.CallsPerUserHour}, {"calls_per_user_day", e.Limits.CallsPerUserDay},
		{"sms_per_org_day", e.Limits.SMSPerOrgDay}, {"calls_per_org_day", e.Limits.CallsPerOrgDay},
	} {
		l.intRange("escalation.limits."+lim.path, int64(lim.v), 0, 1_000_000)
	}
}

// WebhookSecretBytes decodes a Standard Webhooks secret ("whsec_<base64>", at least 24 bytes).
func WebhookSecretBytes(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if !strings.HasPrefix(s, "whsec_") || err != nil || len(b) < 24 {
		return nil, fmt.Errorf(`must be "whsec_" followed by the base64 of at least 24 random bytes`)
	}
	return b, nil
}

// checkOIDC validates single sign-on (issue 13, oidc). With no issuer SSO is off, and any other
// connection option set is a mistake (most likely a missing ONY_OIDC_ISSUER), not something to ignore.
func (l *loader) checkOIDC(o OIDC) {
	if o.Issuer == "" {
		for _, s := range []struct {
			path string
			set  bool
		}{{"oidc.client_id", o.ClientID != ""}, {"oidc.client_secret", o.ClientSecret != ""}, {"oidc.redirect_url", o.RedirectURL != ""}} {
			if s.set {
				l.fail(s.path, "needs oidc.issuer: single sign-on is off without it")
			}
		}
		return
	}
	l.checkHTTPURL("oidc.issuer", o.Issuer, true)
	if o.ClientID == "" {
		// Placed where the issuer was set: that is the line to add it beside.
		l.addAt(l.posOf("oidc.issuer"), "oidc.client_id", "must be set when oidc.issuer is")
	}
	if o.RedirectURL != "" {
		l.checkHTTPURL("oidc.redirect_url", o.RedirectURL, false)
	}
	if len(o.Scopes) == 0 {
		l.fail("oidc.scopes", "must not be empty (the default is openid, email, profile)")
	}
	for i, sc := range o.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \t\r\n\"") {
			l.fail(fmt.Sprintf("oidc.scopes[%d]", i), "must be one scope name without spaces")
		}
	}
	l.nonEmpty("oidc.claims.email", o.Claims.Email)
	l.nonEmpty("oidc.claims.name", o.Claims.Name)
	l.nonEmpty("oidc.claims.groups", o.Claims.Groups)
	groups := make([]string, 0, len(o.Roles))
	for g := range o.Roles {
		groups = append(groups, g)
	}
	slices.Sort(groups) // one order for the messages
	for _, g := range groups {
		switch o.Roles[g] {
		case "admin", "member", "viewer":
		default:
			l.fail(fmt.Sprintf("oidc.roles[%q]", g), "must be admin, member or viewer")
		}
	}
	switch o.DefaultRole {
	case "", "admin", "member", "viewer":
	default:
		l.fail("oidc.default_role", "must be admin, member, viewer or empty")
	}
	if o.AllowUnknown && len(o.Roles) == 0 && o.DefaultRole == "" {
		l.addAt(l.posOf("oidc.allow_unknown"), "oidc.default_role",
			"must be set when oidc.allow_unknown is true and oidc.roles is empty: it is the role new people get")
	}
}

// checkHTTPURL wants an absolute http(s) URL without user info or fragment. The issuer must use https
// except on a loopback host (a provider for development or tests), since its keys vouch for everyone.
func (l *loader) checkHTTPURL(path, v string, httpsOnly bool) {
	u, err := url.Parse(v)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		l.fail(path, "must be an absolute URL such as https://sso.example.com")
	case u.Scheme != "https" && u.Scheme != "http":
		l.fail(path, "must use https")
	case u.Scheme == "http" && httpsOnly && !loopbackHost(u.Hostname()):
		l.fail(path, "must use https (http is accepted only for localhost)")
	case u.User != nil:
		l.fail(path, "must not contain a user name or password")
	case u.Fragment != "" || strings.Contains(v, "#"):
		l.fail(path, "must not have a fragment")
	}
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
