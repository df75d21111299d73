package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/yamlnode"
)

const testKey1 = "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
const testWebhookSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// testSigningKey is a throwaway note key (note.GenerateKey) whose base64 holds a '+', as many do.
const testSigningKey = "PRIVATE+KEY+ony-test+26ac131f+AfNlPJv+qaX188UwXUvLjDxtmv1wdgnCozJUFKkhsV8R"
const testKey2 = "v2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

func TestDefaults(t *testing.T) {
	t.Parallel()
	want := Config{
		Listen:    "127.0.0.1:8080",
		PublicURL: "http://127.0.0.1:8080",
		DataDir:   "./ony-data",
		Instance:  "ony",
		Database:  Database{MaxOpenConns: 20},
		Redis:     Redis{Prefix: "ony:"},
		Log:       Log{Level: "info", Format: "text"},
		Handoffs:  Handoffs{DefaultTimeout: Duration(time.Hour), MaxTimeout: Duration(24 * time.Hour), MaxPayloadBytes: 1048576},
		Auth: Auth{SessionTTL: Duration(12 * time.Hour), SessionIdle: Duration(2 * time.Hour), LoginAttemptsPerAccount: 5, LoginAttemptsPerAddress: 20,
			LoginWindow: Duration(15 * time.Minute)},
		Jobs:       Jobs{PollInterval: Duration(200 * time.Millisecond)},
		Callbacks:  Callbacks{Timeout: Duration(10 * time.Second), MaxAttempts: 12},
		Summarizer: Summarizer{Timeout: Duration(10 * time.Second)},
		Escalation: Escalation{SendTimeout: Duration(10 * time.Second), Limits: Limits{SMSPerUserHour: 10, SMSPerUserDay: 40,
			CallsPerUserHour: 6, CallsPerUserDay: 20, SMSPerOrgDay: 500, CallsPerOrgDay: 200}},
		Bootstrap:       Bootstrap{OrgName: "Default", AdminEmail: "admin@localhost"},
		SMTP:            SMTP{Port: 587, TLS: "starttls", Timeout: Duration(10 * time.Second)},
		ShutdownTimeout: Duration(15 * time.Second),
		OIDC: OIDC{Scopes: []string{"openid", "email", "profile"}, // issue 13, oidc
			Claims: OIDCClaims{Email: "email", Name: "name", Groups: "groups"}},
		Slack:      Slack{APIURL: "https://slack.com/api/"},
		Telegram:   Telegram{APIURL: "https://api.telegram.org"},
		Twilio:     Twilio{APIURL: "https://api.twilio.com"},
		Telnyx:     Telnyx{APIURL: "https://api.telnyx.com"},
		Plivo:      Plivo{APIURL: "https://api.plivo.com"},
		VoiceAgent: VoiceAgent{FirstAudio: Duration(4 * time.Second), MaxCall: Duration(5 * time.Minute), MaxCalls: 50},
	}
	tests := []struct {
		name string
		got  func(t *testing.T) Config
	}{
		{"Default", func(*testing.T) Config { return Default() }},
		{"Load without file or env", func(t *testing.T) Config { return *mustLoad(t, "", nil) }},
		{"Load with nil getenv", func(t *testing.T) Config {
			c, err := Load("", nil)
			if err != nil {
				t.Fatal(err)
			}
			return *c
		}},
		{"empty file", func(t *testing.T) Config { return *mustLoad(t, "# nothing\n", nil) }},
		{"null document", func(t *testing.T) Config { return *mustLoad(t, "~\n", nil) }},
		{"null values keep defaults", func(t *testing.T) Config {
			return *mustLoad(t, "listen:\nlog: ~\nauth:\n  secure_cookies: null\nkeyring:\n  keys:\n", nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.got(t); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestFileValues(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, `
listen: 0.0.0.0:9000
public_url: https://ony.example.com/base
trusted_proxies: [10.0.0.0/8, "2001:db8::1"]
data_dir: /var/lib/ony
instance: eu-1.ony
database:
  url: postgres://ony:pw@db/ony
  max_open_conns: 25
redis:
  url: rediss://cache:6380/0
  prefix: "ony-eu:"
log: {level: debug, format: json}
handoffs:
  default_timeout: 30m
  max_timeout: 48h
  max_payload_bytes: 0x200000
auth:
  session_ttl: 8h
  login_attempts_per_account: 3
  login_attempts_per_address: 50
  login_window: 1h
  secure_cookies: false
jobs:
  poll_interval: 1s
  workers: 4
callbacks:
  timeout: 30s
  max_attempts: 5
keyring:
  keys:
    - `+testKey1+`
    - `+testKey2+`
escalation:
  ladders_dir: /etc/ony/ladders
  webhooks: ["teams=https://bridge.example/hook", "ntfy=http://ntfy.internal/ony"]
  webhook_secret: `+testWebhookSecret+`
  send_timeout: 5s
  limits: {sms_per_user_hour: 1, sms_per_user_day: 2, calls_per_user_hour: 3, calls_per_user_day: 4, sms_per_org_day: 5, calls_per_org_day: 0}
bootstrap:
  org_name: Acme Corp
  admin_email: ops@acme.example
shutdown_timeout: 1m30s
oidc:
  issuer: https://sso.acme.example/realms/acme
  client_id: 12345
  client_secret: shh
  scopes: [openid, email, groups]
  claims: {groups: realm_access.roles}
  roles:
    "/ony admins": admin
    engineering: member
  default_role: viewer
  org: 2024
metrics:
  listen: 127.0.0.1:9100
`, nil)
	want := Config{
		Listen:         "0.0.0.0:9000",
		PublicURL:      "https://ony.example.com/base",
		TrustedProxies: []string{"10.0.0.0/8", "2001:db8::1"},
		DataDir:        "/var/lib/ony",
		Instance:       "eu-1.ony",
		Database:       Database{URL: "postgres://ony:pw@db/ony", MaxOpenConns: 25},
		Redis:          Redis{URL: "rediss://cache:6380/0", Prefix: "ony-eu:"},
		Log:            Log{Level: "debug", Format: "json"},
		Handoffs:       Handoffs{DefaultTimeout: Duration(30 * time.Minute), MaxTimeout: Duration(48 * time.Hour), MaxPayloadBytes: 2 << 20},
		Auth: Auth{SessionTTL: Duration(8 * time.Hour), SessionIdle: Duration(2 * time.Hour), LoginAttemptsPerAccount: 3, LoginAttemptsPerAddress: 50,
			LoginWindow: Duration(time.Hour), SecureCookies: ptr(false)},
		Jobs:       Jobs{PollInterval: Duration(time.Second), Workers: 4},
		Callbacks:  Callbacks{Timeout: Duration(30 * time.Second), MaxAttempts: 5},
		Summarizer: Summarizer{Timeout: Duration(10 * time.Second)},
		Keyring:    Keyring{Keys: []Secret{testKey1, testKey2}},
		Escalation: Escalation{LaddersDir: "/etc/ony/ladders", Webhooks: []Secret{"teams=https://bridge.example/hook", "ntfy=http://ntfy.internal/ony"},
			WebhookSecret: testWebhookSecret, SendTimeout: Duration(5 * time.Second),
			Limits: Limits{SMSPerUserHour: 1, SMSPerUserDay: 2, CallsPerUserHour: 3, CallsPerUserDay: 4, SMSPerOrgDay: 5}},
		Bootstrap:       Bootstrap{OrgName: "Acme Corp", AdminEmail: "ops@acme.example"},
		SMTP:            SMTP{Port: 587, TLS: "starttls", Timeout: Duration(10 * time.Second)},
		ShutdownTimeout: Duration(90 * time.Second),
		OIDC: OIDC{Issuer: "https://sso.acme.example/realms/acme", ClientID: "12345", ClientSecret: "shh",
			Scopes: []string{"openid", "email", "groups"}, Claims: OIDCClaims{Email: "email", Name: "name", Groups: "realm_access.roles"},
			Roles: map[string]string{"/ony admins": "admin", "engineering": "member"}, DefaultRole: "viewer", Org: "2024"},
		Slack:      Slack{APIURL: "https://slack.com/api/"},
		Telegram:   Telegram{APIURL: "https://api.telegram.org"},
		Twilio:     Twilio{APIURL: "https://api.twilio.com"},
		Telnyx:     Telnyx{APIURL: "https://api.telnyx.com"},
		Plivo:      Plivo{APIURL: "https://api.plivo.com"},
		VoiceAgent: VoiceAgent{FirstAudio: Duration(4 * time.Second), MaxCall: Duration(5 * time.Minute), MaxCalls: 50},
		Metrics:    Metrics{Listen: "127.0.0.1:9100"},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

func TestPublicURLFollowsListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"file listen", "listen: 10.0.0.1:9000\n", nil, "http://10.0.0.1:9000"},
		{"env listen", "", map[string]string{"ONY_LISTEN": "[::1]:7000"}, "http://[::1]:7000"},
		{"wildcard host", "listen: :9090\n", nil, "http://localhost:9090"},
		{"explicit wins", "listen: :9090\npublic_url: https://ony.example.com\n", nil, "https://ony.example.com"},
		{"empty env clears file value", "public_url: https://ony.example.com\n", map[string]string{"ONY_PUBLIC_URL": ""}, "http://127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mustLoad(t, tt.yaml, tt.env).PublicURL; got != tt.want {
				t.Errorf("PublicURL = %q, want %q", got, tt.want)
			}
		})
	}
}

// validEnv holds a valid, non-default value for every option; the test below
// fails when a field is added without one, so env coverage cannot go stale.
var validEnv = map[string]struct {
	value string
	want  any
}{
	"listen":                                {"0.0.0.0:9999", "0.0.0.0:9999"},
	"public_url":                            {"https://ony.test", "https://ony.test"},
	"trusted_proxies":                       {"10.0.0.0/8, 192.0.2.7\nfd00::/8", []string{"10.0.0.0/8", "192.0.2.7", "fd00::/8"}},
	"data_dir":                              {"/data", "/data"},
	"instance":                              {"eu-2", "eu-2"},
	"database.url":                          {"postgresql://u@h/d", Secret("postgresql://u@h/d")},
	"database.migrate_url":                  {"postgresql://o@h/d", Secret("postgresql://o@h/d")},
	"database.max_open_conns":               {"7", 7},
	"redis.url":                             {"redis://r:6379", Secret("redis://r:6379")},
	"redis.prefix":                          {"x:", "x:"},
	"log.level":                             {"warn", "warn"},
	"log.format":                            {"json", "json"},
	"handoffs.default_timeout":              {"2h", Duration(2 * time.Hour)},
	"handoffs.max_timeout":                  {"72h", Duration(72 * time.Hour)},
	"handoffs.max_payload_bytes":            {"4096", int64(4096)},
	"auth.session_ttl":                      {"1h30m", Duration(90 * time.Minute)},
	"auth.session_idle":                     {"45m", Duration(45 * time.Minute)},
	"auth.login_attempts_per_account":       {"9", 9},
	"auth.login_attempts_per_address":       {"99", 99},
	"auth.login_window":                     {"5m", Duration(5 * time.Minute)},
	"auth.secure_cookies":                   {"true", ptr(true)},
	"jobs.poll_interval":                    {"50ms", Duration(50 * time.Millisecond)},
	"jobs.workers":                          {"3", 3},
	"retention.payload_days":                {"30", 30},
	"callbacks.timeout":                     {"3s", Duration(3 * time.Second)},
	"callbacks.max_attempts":                {"2", 2},
	"callbacks.allow_private":               {"true", true},
	"callbacks.allow_cidrs":                 {"10.0.0.0/8, fd00::/8", []string{"10.0.0.0/8", "fd00::/8"}},
	"keyring.keys":                          {testKey1 + ", " + testKey2, []Secret{testKey1, testKey2}},
	"audit.signing_keys":                    {testSigningKey, []Secret{testSigningKey}},
	"risk.policy_file":                      {"/etc/ony/risk.yaml", "/etc/ony/risk.yaml"},
	"redact.rules_file":                     {"/etc/ony/redact.yaml", "/etc/ony/redact.yaml"},
	"summarizer.base_url":                   {"http://127.0.0.1:11434/v1", Secret("http://127.0.0.1:11434/v1")},
	"summarizer.api_key":                    {"sk-test", Secret("sk-test")},
	"summarizer.model":                      {"llama3", "llama3"},
	"summarizer.timeout":                    {"5s", Duration(5 * time.Second)},
	"escalation.ladders_dir":                {"/etc/ony/ladders", "/etc/ony/ladders"},
	"escalation.webhooks":                   {"teams=https://bridge.example/hook", []Secret{"teams=https://bridge.example/hook"}},
	"escalation.webhook_secret":             {testWebhookSecret, Secret(testWebhookSecret)},
	"escalation.send_timeout":               {"3s", Duration(3 * time.Second)},
	"escalation.limits.sms_per_user_hour":   {"1", 1},
	"escalation.limits.sms_per_user_day":    {"2", 2},
	"escalation.limits.calls_per_user_hour": {"3", 3},
	"escalation.limits.calls_per_user_day":  {"4", 4},
	"escalation.limits.sms_per_org_day":     {"5", 5},
	"escalation.limits.calls_per_org_day":   {"0", 0},
	"bootstrap.org_name":                    {"Org", "Org"},
	"bootstrap.admin_email":                 {"a@b.example", "a@b.example"},
	"smtp.host":                             {"smtp.example.com", "smtp.example.com"},
	"smtp.port":                             {"465", 465},
	"smtp.username":                         {"mailer", "mailer"},
	"smtp.password":                         {"hunter2", Secret("hunter2")},
	"smtp.from":                             {"Ony <ony@example.com>", "Ony <ony@example.com>"},
	"smtp.tls":                              {"tls", "tls"},
	"smtp.timeout":                          {"30s", Duration(30 * time.Second)},
	"shutdown_timeout":                      {"30s", Duration(30 * time.Second)},
	// issue 13, oidc
	"oidc.issuer":        {"https://sso.example", "https://sso.example"},
	"oidc.client_id":     {"ony-env", "ony-env"},
	"oidc.client_secret": {"s3cret", Secret("s3cret")},
	"oidc.redirect_url":  {"https://ony.test/console/sso/callback", "https://ony.test/console/sso/callback"},
	"oidc.scopes":        {"openid, email, groups", []string{"openid", "email", "groups"}},
	"oidc.claims.email":  {"upn", "upn"},
	"oidc.claims.name":   {"display_name", "display_name"},
	"oidc.claims.groups": {"roles", "roles"},
	"oidc.roles":         {"ony-admins=admin, devs=member", map[string]string{"ony-admins": "admin", "devs": "member"}},
	"oidc.default_role":  {"member", "member"},
	"oidc.allow_unknown": {"true", true},
	"oidc.org":           {"Acme", "Acme"},
	// issue 14
	"slack.bot_token":         {"xoxb-1234-5678-envtoken", Secret("xoxb-1234-5678-envtoken")},
	"slack.signing_secret":    {"env-signing", Secret("env-signing")},
	"slack.app_token":         {"xapp-1-A111-env", Secret("xapp-1-A111-env")},
	"slack.api_url":           {"http://127.0.0.1:9/api/", "http://127.0.0.1:9/api/"},
	"telegram.bot_token":      {"987654:ENVenvENVenvENVenvENVenv", Secret("987654:ENVenvENVenvENVenvENVenv")},
	"telegram.webhook_secret": {"env_secret-1", Secret("env_secret-1")},
	"telegram.api_url":        {"http://127.0.0.1:9", "http://127.0.0.1:9"},
	// issue 15
	"twilio.account_sid":     {"AC0123456789abcdef0123456789abcdef", "AC0123456789abcdef0123456789abcdef"},
	"twilio.auth_token":      {"env-twilio-token", Secret("env-twilio-token")},
	"twilio.from":            {"+14155550100", "+14155550100"},
	"twilio.api_url":         {"http://127.0.0.1:9", "http://127.0.0.1:9"},
	"signalwire.space_url":   {"https://env.signalwire.com", "https://env.signalwire.com"},
	"signalwire.project_id":  {"0d4b2b3c-1111-2222-3333-444455556666", "0d4b2b3c-1111-2222-3333-444455556666"},
	"signalwire.api_token":   {"PTenv", Secret("PTenv")},
	"signalwire.signing_key": {"PSKenv", Secret("PSKenv")},
	"signalwire.from":        {"+14155550101", "+14155550101"},
	"telnyx.api_key":         {"KEYenv", Secret("KEYenv")},
	"telnyx.public_key":      {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="},
	"telnyx.connection_id":   {"env-connection", "env-connection"},
	"telnyx.from":            {"+14155550102", "+14155550102"},
	"telnyx.api_url":         {"http://127.0.0.1:9", "http://127.0.0.1:9"},
	"plivo.auth_id":          {"MAENVENVENVENVENVENV", "MAENVENVENVENVENVENV"},
	"plivo.auth_token":       {"env-plivo-token", Secret("env-plivo-token")},
	"plivo.from":             {"+14155550103", "+14155550103"},
	"plivo.api_url":          {"http://127.0.0.1:9", "http://127.0.0.1:9"},
	// issue 16
	"voice_agent.url":         {"wss://realtime.example/v1/realtime", "wss://realtime.example/v1/realtime"},
	"voice_agent.api_key":     {"sk-env", Secret("sk-env")},
	"voice_agent.model":       {"gpt-realtime", "gpt-realtime"},
	"voice_agent.voice":       {"marin", "marin"},
	"voice_agent.first_audio": {"2s", Duration(2 * time.Second)},
	"voice_agent.max_call":    {"10m", Duration(10 * time.Minute)},
	"voice_agent.max_calls":   {"7", 7},
	"metrics.listen":          {"127.0.0.1:9999", "127.0.0.1:9999"},
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	// A file sets everything to something else, so each case proves env beats file.
	file := writeTemp(t, "ony.yaml", `
listen: 127.0.0.1:1
public_url: https://file.test
trusted_proxies: [192.0.2.1]
data_dir: /file
instance: file
database: {url: "postgres://file", max_open_conns: 1}
redis: {url: "redis://file", prefix: "file:"}
log: {level: error, format: text}
handoffs: {default_timeout: 11s, max_timeout: 29h, max_payload_bytes: 1}
auth: {session_ttl: 2m, login_attempts_per_account: 1, login_attempts_per_address: 1, login_window: 2s, secure_cookies: false}
jobs: {poll_interval: 11ms, workers: 1}
callbacks: {timeout: 2s, max_attempts: 1, allow_private: false, allow_cidrs: [192.168.0.0/16]}
keyring: {keys: ["`+testKey2+`"]}
summarizer: {model: file-model}
escalation: {webhook_secret: "`+testWebhookSecret+`", send_timeout: 9s}
bootstrap: {org_name: File, admin_email: file@file.test}
smtp: {host: mail.file.test, from: ony@file.test, username: file, password: file-pw}
shutdown_timeout: 2s
oidc: {issuer: "https://file.test", client_id: file, client_secret: file, scopes: [openid], claims: {email: e, name: n, groups: g}, roles: {g: viewer}, default_role: viewer, org: file}
slack: {bot_token: "xoxb-file-token-1", signing_secret: file, app_token: "xapp-file-token-1", api_url: "https://slack.file.test/api/"}
telegram: {bot_token: "123456:FILEfileFILEfileFILEfile", webhook_secret: file, api_url: "https://tg.file.test"}
twilio: {account_sid: AC00000000000000000000000000000000, auth_token: file, from: "+15550000001", api_url: "https://twilio.file.test"}
signalwire: {space_url: "https://file.signalwire.com", project_id: 00000000-0000-0000-0000-000000000000, api_token: file, signing_key: file, from: "+15550000002"}
telnyx: {api_key: file, public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", connection_id: file, from: "+15550000003", api_url: "https://telnyx.file.test"}
plivo: {auth_id: MAFILEFILEFILEFILEFI, auth_token: file, from: "+15550000004", api_url: "https://plivo.file.test"}
voice_agent: {url: "wss://file.test/realtime", api_key: file, model: file-model, voice: file-voice, first_audio: 1s, max_call: 1m, max_calls: 1}
metrics: {listen: "127.0.0.1:1234"}
`)
	for _, lf := range leaves() {
		tc, ok := validEnv[lf.path]
		if !ok {
			t.Errorf("validEnv has no entry for %s", lf.path)
			continue
		}
		t.Run(lf.env, func(t *testing.T) {
			t.Parallel()
			c, err := Load(file, envMap(map[string]string{lf.env: tc.value}))
			if err != nil {
				t.Fatal(err)
			}
			if got := field(c, lf).Interface(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s = %#v, want %#v", lf.path, got, tc.want)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	t.Parallel()
	names := (&Config{}).EnvNames()
	for path, want := range map[string]string{
		"listen":                          "ONY_LISTEN",
		"data_dir":                        "ONY_DATA_DIR",
		"database.url":                    "ONY_DATABASE_URL",
		"database.migrate_url":            "ONY_DATABASE_MIGRATE_URL",
		"handoffs.max_timeout":            "ONY_HANDOFFS_MAX_TIMEOUT",
		"redis.prefix":                    "ONY_REDIS_PREFIX",
		"auth.login_attempts_per_address": "ONY_AUTH_LOGIN_ATTEMPTS_PER_ADDRESS",
		"keyring.keys":                    "ONY_KEYRING_KEYS",
		"audit.signing_keys":              "ONY_AUDIT_SIGNING_KEYS",
		"risk.policy_file":                "ONY_RISK_POLICY_FILE",
		"redact.rules_file":               "ONY_REDACT_RULES_FILE",
		"summarizer.base_url":             "ONY_SUMMARIZER_BASE_URL",
		"summarizer.api_key":              "ONY_SUMMARIZER_API_KEY",
		"summarizer.model":                "ONY_SUMMARIZER_MODEL",
		"summarizer.timeout":              "ONY_SUMMARIZER_TIMEOUT",
		"shutdown_timeout":                "ONY_SHUTDOWN_TIMEOUT",
	} {
		if names[path] != want {
			t.Errorf("EnvNames()[%q] = %q, want %q", path, names[path], want)
		}
	}
	if len(names) != len(validEnv) {
		t.Errorf("EnvNames has %d entries, validEnv %d", len(names), len(validEnv))
	}
}

func TestEnvEmptyClearsFileValue(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "redis:\n  url: redis://cache\nkeyring:\n  keys: ["+testKey1+"]\nauth:\n  secure_cookies: true\n",
		map[string]string{"ONY_REDIS_URL": "", "ONY_KEYRING_KEYS": "", "ONY_AUTH_SECURE_COOKIES": ""})
	if c.Redis.URL != "" || c.Keyring.Keys != nil || c.Auth.SecureCookies != nil {
		t.Errorf("empty env did not clear: redis.url set=%t keys=%d secure_cookies=%v",
			c.Redis.URL != "", len(c.Keyring.Keys), c.Auth.SecureCookies)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     string
		content string
		check   func(*Config) bool
	}{
		{"database url, trailing newline trimmed", "ONY_DATABASE_URL_FILE", "postgres://u:p@h/d\n",
			func(c *Config) bool { return c.Database.URL == "postgres://u:p@h/d" }},
		{"redis url, CRLF trimmed", "ONY_REDIS_URL_FILE", "redis://h:1\r\n",
			func(c *Config) bool { return c.Redis.URL == "redis://h:1" }},
		{"keyring keys, one per line", "ONY_KEYRING_KEYS_FILE", testKey1 + "\n" + testKey2 + "\n",
			func(c *Config) bool { return reflect.DeepEqual(c.Keyring.Keys, []Secret{testKey1, testKey2}) }},
		{"keyring keys, comma-separated", "ONY_KEYRING_KEYS_FILE", testKey1 + "," + testKey2,
			func(c *Config) bool { return reflect.DeepEqual(c.Keyring.Keys, []Secret{testKey1, testKey2}) }},
		{"empty file clears", "ONY_DATABASE_URL_FILE", "",
			func(c *Config) bool { return c.Database.URL == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secret := writeTemp(t, "secret", tt.content)
			c := mustLoad(t, "database: {url: postgres://file}\n", map[string]string{tt.env: secret})
			if !tt.check(c) {
				t.Errorf("value from %s not applied", tt.env)
			}
		})
	}
}

func TestSecretFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxSecretFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		env          map[string]string
		path, pos    string
		msgSubstring string
	}{
		{"both set", map[string]string{"ONY_DATABASE_URL": "postgres://a", "ONY_DATABASE_URL_FILE": missing},
			"database.url", "ONY_DATABASE_URL", "both ONY_DATABASE_URL and ONY_DATABASE_URL_FILE are set"},
		{"both set, list", map[string]string{"ONY_KEYRING_KEYS": "", "ONY_KEYRING_KEYS_FILE": missing},
			"keyring.keys", "ONY_KEYRING_KEYS", "use only one"},
		{"missing file", map[string]string{"ONY_REDIS_URL_FILE": missing},
			"redis.url", "ONY_REDIS_URL_FILE", "cannot read \"" + missing + "\""},
		{"directory", map[string]string{"ONY_REDIS_URL_FILE": dir},
			"redis.url", "ONY_REDIS_URL_FILE", "cannot read"},
		{"too large", map[string]string{"ONY_REDIS_URL_FILE": big},
			"redis.url", "ONY_REDIS_URL_FILE", "larger than"},
		{"empty name", map[string]string{"ONY_DATABASE_URL_FILE": ""},
			"database.url", "ONY_DATABASE_URL_FILE", "must name a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, list := loadErrors(t, "", tt.env)
			fe := findError(t, list, tt.path)
			if fe.Pos() != tt.pos {
				t.Errorf("Pos = %q, want %q", fe.Pos(), tt.pos)
			}
			mustContain(t, fe.Msg, tt.msgSubstring)
		})
	}
}

func TestNonSecretHasNoFileVariant(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", map[string]string{"ONY_LISTEN_FILE": "/nonexistent"})
	if c.Listen != Default().Listen {
		t.Errorf("ONY_LISTEN_FILE changed listen to %q", c.Listen)
	}
}

func TestEnvParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ env, value, path, msg string }{
		{"ONY_JOBS_WORKERS", "many", "jobs.workers", `invalid integer "many"`},
		{"ONY_JOBS_WORKERS", "", "jobs.workers", `invalid integer ""`},
		{"ONY_HANDOFFS_MAX_PAYLOAD_BYTES", "99999999999999999999", "handoffs.max_payload_bytes", "invalid integer"},
		{"ONY_HANDOFFS_MAX_TIMEOUT", "2 days", "handoffs.max_timeout", `invalid duration "2 days"`},
		{"ONY_AUTH_SECURE_COOKIES", "sometimes", "auth.secure_cookies", `invalid boolean "sometimes"`},
		{"ONY_LOG_LEVEL", "verbose", "log.level", "must be one of debug, info, warn, error"},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			_, list := loadErrors(t, "", map[string]string{tt.env: tt.value})
			fe := findError(t, list, tt.path)
			if fe.Pos() != tt.env {
				t.Errorf("Pos = %q, want %q", fe.Pos(), tt.env)
			}
			mustContain(t, fe.Msg, tt.msg)
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fe   yamlnode.Diagnostic
		want string
	}{
		{yamlnode.Diagnostic{File: "ony.yaml", Line: 12, Column: 3, Path: "handoffs.max_timeout", Msg: "m"}, "ony.yaml:12:3: handoffs.max_timeout: m"},
		{yamlnode.Diagnostic{File: "ONY_LOG_LEVEL", Path: "log.level", Msg: "m"}, "ONY_LOG_LEVEL: log.level: m"},
		{yamlnode.Diagnostic{Path: "jobs.workers", Msg: "m"}, "jobs.workers: m"},
		{yamlnode.Diagnostic{File: "ony.yaml", Line: 3, Msg: "m"}, "ony.yaml:3: m"},
	}
	for _, tt := range tests {
		if got := tt.fe.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	errs := &Errors{List: []yamlnode.Diagnostic{tests[0].fe, tests[1].fe}}
	if got, want := errs.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

func TestManyErrorsAtOnce(t *testing.T) {
	t.Parallel()
	file, list := loadErrors(t, `listen: 127.0.0.1:8080
log:
  level: loud
databse:
  url: postgres://x
handoffs:
  default_timeout: 1h
  max_timeout: 30m
jobs:
  workers: "ten"
`, map[string]string{"ONY_LOG_FORMAT": "xml"})
	want := []string{
		file + ":3:3: log.level: must be one of debug, info, warn, error",
		file + `:4:1: databse: unknown key (did you mean "database"?)`,
		file + ":8:3: handoffs.max_timeout: must be at least handoffs.default_timeout (1h)",
		file + ":10:12: jobs.workers: expected an integer, got a string",
		"ONY_LOG_FORMAT: log.format: must be one of text, json",
	}
	got := (&Errors{List: list}).Error()
	for _, w := range want {
		mustContain(t, got, w)
	}
	if n := strings.Count(got, "\n") + 1; n != len(want) {
		t.Errorf("got %d errors, want %d:\n%s", n, len(want), got)
	}
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct{ yaml, path, msg string }{
		{"databse: {}\n", "databse", `unknown key (did you mean "database"?)`},
		{"Listen: x\n", "Listen", `unknown key (did you mean "listen"?)`},
		{"log:\n  lvel: info\n", "log.lvel", `unknown key (did you mean "level"?)`},
		{"handoffs:\n  max_timout: 1h\n", "handoffs.max_timout", `unknown key (did you mean "max_timeout"?)`},
		{"colour: blue\n", "colour", "unknown key"},
		{"\"has space\": 1\n", `"has space"`, "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			_, list := loadErrors(t, tt.yaml, nil)
			if fe := findError(t, list, tt.path); fe.Msg != tt.msg {
				t.Errorf("Msg = %q, want %q", fe.Msg, tt.msg)
			}
		})
	}
}

func TestCookieSecure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		set  *bool
		url  string
		want bool
	}{
		{nil, "https://ony.example.com", true},
		{nil, "HTTPS://ony.example.com", true},
		{nil, "http://127.0.0.1:8080", false},
		{nil, "::bad", false},
		{ptr(false), "https://ony.example.com", false},
		{ptr(true), "http://127.0.0.1:8080", true},
	}
	for _, tt := range tests {
		if got := (Auth{SecureCookies: tt.set}).CookieSecure(tt.url); got != tt.want {
			t.Errorf("CookieSecure(%q) with %v = %t, want %t", tt.url, tt.set, got, tt.want)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "public_url: https://ony.example.com\nhandoffs: {max_timeout: 36h}\n",
		map[string]string{"ONY_DATABASE_URL": "postgres://u:pw@h/d"})
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"url: '******'",
		"max_timeout: 36h0m0s",
		"secure_cookies: null # automatic from public_url: true",
		"public_url: https://ony.example.com",
	} {
		mustContain(t, s, want)
	}
	// The output must itself be a loadable config once secrets are removed.
	s = strings.ReplaceAll(s, "'******'", `""`)
	if _, err := Load(writeTemp(t, "redacted.yaml", s), nil); err != nil {
		t.Errorf("Redacted output does not load back: %v", err)
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	if got := Duration(90 * time.Minute).String(); got != "1h30m0s" {
		t.Errorf("String() = %q", got)
	}
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.D() != 90*time.Minute {
		t.Errorf("UnmarshalText = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("90")); err == nil {
		t.Error("UnmarshalText accepted a number without unit")
	}
}

func TestConfigFileErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing, nil)
	if err == nil {
		t.Fatal("missing file accepted")
	}
	want := missing + ": cannot read config file: no such file or directory"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestJobWorkers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		workers int
		url     Secret
		want    int
	}{
		{0, "", 100},
		{0, "postgres://ony@127.0.0.1/ony", 50},
		{7, "", 7},
		{7, "postgres://ony@127.0.0.1/ony", 7},
	} {
		c := Default()
		c.Jobs.Workers, c.Database.URL = tt.workers, tt.url
		if got := c.JobWorkers(); got != tt.want {
			t.Errorf("workers %d, url %q: JobWorkers() = %d, want %d", tt.workers, tt.url, got, tt.want)
		}
	}
}
