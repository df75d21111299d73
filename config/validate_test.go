package config

import (
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// TestValidationRules sets one option per case, from the file, and expects
// exactly one error for the named path, positioned at the option's key.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string // a single option; its key is on line 1 or 2
		path string
		msg  string // substring; "" means the value must be accepted
	}{
		{"listen ok", "listen: '[::]:80'", "listen", ""},
		{"listen port 0 ok", "listen: localhost:0", "listen", ""},
		{"listen no port", "listen: localhost", "listen", "must be host:port"},
		{"listen named port", "listen: localhost:http", "listen", "numeric port"},
		{"listen port too big", "listen: localhost:70000", "listen", "numeric port"},
		{"listen empty", "listen: ''", "listen", "must be host:port"},

		{"public_url with path ok", "public_url: https://ony.example.com/ony/", "public_url", ""},
		{"public_url relative", "public_url: /ony", "public_url", "must be an absolute URL"},
		{"public_url no host", "public_url: 'http://'", "public_url", "must be an absolute URL"},
		{"public_url opaque", "public_url: 'mailto:a@b.c'", "public_url", "must be an absolute URL"},
		{"public_url scheme", "public_url: ftp://ony.example.com", "public_url", "must use http or https"},
		{"public_url query", "public_url: https://ony.example.com/?a=1", "public_url", "must not have a query"},
		{"public_url empty query", "public_url: https://ony.example.com/?", "public_url", "must not have a query"},
		{"public_url fragment", "public_url: 'https://ony.example.com/#top'", "public_url", "must not have a fragment"},
		{"public_url user", "public_url: https://u:p@ony.example.com", "public_url", "must not contain a user name"},

		{"trusted_proxies ok", "trusted_proxies: [10.0.0.0/8, '172.16.0.1', 'fd00::/8', '::1', '::ffff:10.0.0.0/104']", "trusted_proxies[0]", ""},
		{"trusted_proxies not an address", "trusted_proxies: [10.0.0.0/8, proxy.internal]", "trusted_proxies[1]", `"proxy.internal" is not a CIDR`},
		{"trusted_proxies bad bits", "trusted_proxies: ['10.0.0.0/33']", "trusted_proxies[0]", `"10.0.0.0/33" is not a CIDR`},
		{"trusted_proxies zone", "trusted_proxies: ['fe80::1%eth0']", "trusted_proxies[0]", "is not a CIDR"},
		{"trusted_proxies not a list", "trusted_proxies: 10.0.0.0/8", "trusted_proxies", "expected a list"},

		{"data_dir empty", "data_dir: ''", "data_dir", "must not be empty"},

		{"instance ok", "instance: eu-1.ony", "instance", ""},
		{"instance upper", "instance: Ony", "instance", "may contain only a-z"},
		{"instance underscore", "instance: my_ony", "instance", "may contain only a-z"},
		{"instance empty", "instance: ''", "instance", "must not be empty"},

		{"database.url postgres ok", "database: {url: 'postgres://u@h/d'}", "database.url", ""},
		{"database.url postgresql ok", "database: {url: 'postgresql://u@h/d'}", "database.url", ""},
		{"database.url mysql", "database: {url: 'mysql://u@h/d'}", "database.url", "must start with postgres:// or postgresql://"},
		{"database.url sqlite path", "database: {url: '/tmp/x.db'}", "database.url", "must start with postgres://"},
		{"max_open_conns 0", "database: {max_open_conns: 0}", "database.max_open_conns", "between 1 and 1000"},
		{"max_open_conns 1000 ok", "database: {max_open_conns: 1000}", "database.max_open_conns", ""},
		{"max_open_conns 1001", "database: {max_open_conns: 1001}", "database.max_open_conns", "between 1 and 1000"},

		{"redis.url ok", "redis: {url: 'rediss://h:6380'}", "redis.url", ""},
		{"redis.url http", "redis: {url: 'http://h'}", "redis.url", "must start with redis:// or rediss://"},
		{"redis.prefix empty ok", "redis: {prefix: ''}", "redis.prefix", ""},

		{"log.level", "log: {level: trace}", "log.level", "must be one of debug, info, warn, error"},
		{"log.level case", "log: {level: INFO}", "log.level", "must be one of"},
		{"log.format", "log: {format: xml}", "log.format", "must be one of text, json"},

		{"default_timeout 10s ok", "handoffs: {default_timeout: 10s}", "handoffs.default_timeout", ""},
		{"default_timeout 9s", "handoffs: {default_timeout: 9s}", "handoffs.default_timeout", "between 10s and 720h"},
		{"max_timeout below default", "handoffs: {max_timeout: 59m}", "handoffs.max_timeout", "must be at least handoffs.default_timeout (1h)"},
		{"max_timeout equal default ok", "handoffs: {max_timeout: 1h}", "handoffs.max_timeout", ""},
		{"max_timeout 30 days ok", "handoffs: {max_timeout: 720h}", "handoffs.max_timeout", ""},
		{"max_timeout above 30 days", "handoffs: {max_timeout: 721h}", "handoffs.max_timeout", "must be at most 720h"},
		{"max_payload_bytes 0", "handoffs: {max_payload_bytes: 0}", "handoffs.max_payload_bytes", "between 1 and 16777216"},
		{"max_payload_bytes 16MiB ok", "handoffs: {max_payload_bytes: 16777216}", "handoffs.max_payload_bytes", ""},
		{"max_payload_bytes over", "handoffs: {max_payload_bytes: 16777217}", "handoffs.max_payload_bytes", "between 1 and 16777216"},

		{"session_ttl", "auth: {session_ttl: 59s}", "auth.session_ttl", "between 1m and 8760h"},
		{"attempts per account", "auth: {login_attempts_per_account: 0}", "auth.login_attempts_per_account", "between 1 and 1000"},
		{"attempts per address", "auth: {login_attempts_per_address: -1}", "auth.login_attempts_per_address", "between 1 and 100000"},
		{"login_window", "auth: {login_window: 0s}", "auth.login_window", "between 1s and 24h"},

		{"metrics.listen ok", "metrics: {listen: '127.0.0.1:9100'}", "metrics.listen", ""},
		{"metrics.listen no port", "metrics: {listen: localhost}", "metrics.listen", "must be host:port"},
		{"metrics.listen is listen", "listen: 127.0.0.1:8080\nmetrics: {listen: '127.0.0.1:8080'}", "metrics.listen", "must differ from listen"},

		{"poll_interval low", "jobs: {poll_interval: 9ms}", "jobs.poll_interval", "between 10ms and 10s"},
		{"poll_interval high", "jobs: {poll_interval: 11s}", "jobs.poll_interval", "between 10ms and 10s"},
		{"retention off ok", "retention: {payload_days: 0}", "retention.payload_days", ""},
		{"retention ten years ok", "retention: {payload_days: 3650}", "retention.payload_days", ""},
		{"retention negative", "retention: {payload_days: -1}", "retention.payload_days", "between 0 and 3650"},
		{"retention too long", "retention: {payload_days: 3651}", "retention.payload_days", "between 0 and 3650"},
		{"workers 0 picks by database", "jobs: {workers: 0}", "jobs.workers", ""},
		{"workers negative", "jobs: {workers: -1}", "jobs.workers", "between 0 and 1000"},
		{"workers 1001", "jobs: {workers: 1001}", "jobs.workers", "between 0 and 1000"},

		{"callbacks.timeout", "callbacks: {timeout: 500ms}", "callbacks.timeout", "between 1s and 5m"},
		{"max_attempts 0", "callbacks: {max_attempts: 0}", "callbacks.max_attempts", "between 1 and 50"},
		{"max_attempts 51", "callbacks: {max_attempts: 51}", "callbacks.max_attempts", "between 1 and 50"},
		{"allow_cidrs ok", "callbacks: {allow_cidrs: [10.0.0.0/8, 'fd00::/8', 192.168.1.5, '::1']}", "callbacks.allow_cidrs", ""},
		{"allow_cidrs bad prefix", "callbacks:\n  allow_cidrs: [10.0.0.0/8, 10.0.0.0/33]", "callbacks.allow_cidrs[1]", `"10.0.0.0/33" is not a CIDR`},
		{"allow_cidrs name", "callbacks:\n  allow_cidrs: [intranet.example]", "callbacks.allow_cidrs[0]", "is not a CIDR such as 10.0.0.0/8"},
		{"allow_private ok", "callbacks: {allow_private: true}", "callbacks.allow_private", ""},

		{"signing key ok", "audit: {signing_keys: ['" + testSigningKey + "']}", "audit.signing_keys[0]", ""},
		{"signing key bad", "audit: {signing_keys: ['v1:abc']}", "audit.signing_keys[0]", "must be a note signing key"},
		{"keys ok", "keyring: {keys: ['" + testKey1 + "', '" + testKey2 + "']}", "keyring.keys[0]", ""},
		{"key no version", "keyring:\n  keys: ['AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=']", "keyring.keys[0]", `must have the form "v<N>:<base64 of 32 bytes>"`},
		{"key version 0", "keyring:\n  keys: ['v0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=']", "keyring.keys[0]", "N a positive integer"},
		{"key version letters", "keyring:\n  keys: ['vx:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=']", "keyring.keys[0]", "N a positive integer"},
		{"key not base64", "keyring:\n  keys: ['v1:!!!!']", "keyring.keys[0]", "not valid standard base64"},
		{"key short", "keyring:\n  keys: ['v1:AAAA']", "keyring.keys[0]", "decodes to 3 bytes"},
		{"key empty", "keyring:\n  keys: ['']", "keyring.keys[0]", "must have the form"},
		{"key version reused", "keyring:\n  keys: ['" + testKey1 + "', 'v1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=']", "keyring.keys[1]", "version v1 is already used by keyring.keys[0]"},

		{"org_name blank", "bootstrap: {org_name: '  '}", "bootstrap.org_name", "must not be empty"},
		{"admin_email no at", "bootstrap: {admin_email: admin}", "bootstrap.admin_email", "must be an email address"},
		{"admin_email display name", "bootstrap: {admin_email: 'Ann <ann@example.com>'}", "bootstrap.admin_email", "must be an email address"},
		{"admin_email spaces", "bootstrap: {admin_email: ' ann@example.com'}", "bootstrap.admin_email", "must be an email address"},
		// identity (issue 13)
		{"smtp from missing", "smtp: {host: mail.example.com, from: ''}", "smtp.from", "must be an email address"},
		{"smtp tls unknown", "smtp: {tls: ssl}", "smtp.tls", "must be one of starttls, tls, none"},
		{"smtp port", "smtp: {port: 0}", "smtp.port", "must be between 1 and 65535"},
		{"smtp host with port", "smtp: {host: 'mail:25', from: a@b.example}", "smtp.host", "must be a host name"},
		{"smtp orphan from", "smtp: {from: a@b.example}", "smtp.from", "needs smtp.host"},
		{"smtp password alone", "smtp: {host: mail.example.com, from: a@b.example, password: pw}", "smtp.password", "needs smtp.username"},
		{"smtp plain password", "smtp: {host: mail.example.com, from: a@b.example, username: u, password: pw, tls: none}", "smtp.tls", "must not be none"},
		{"slack token shape", "slack: {bot_token: xoxp-user-token-1, signing_secret: s}", "slack.bot_token", "must be a bot token starting xoxb-"},
		{"slack without signing secret", "slack: {bot_token: xoxb-1234-abcdefgh}", "slack.signing_secret", "must be set when slack.bot_token is"},
		{"slack orphan signing secret", "slack: {signing_secret: s}", "slack.signing_secret", "needs slack.bot_token"},
		{"slack app token shape", "slack: {bot_token: xoxb-1234-abcdefgh, signing_secret: s, app_token: xoxb-1234-abcdefgh}", "slack.app_token", "must be an app-level token"},
		{"slack api url slash", "slack: {api_url: 'https://slack.example/api'}", "slack.api_url", "must end with /"},
		{"slack api url plain http", "slack: {api_url: 'http://slack.example/api/'}", "slack.api_url", "must use https"},
		{"telegram token shape", "telegram: {bot_token: nope}", "telegram.bot_token", "must be a bot token as @BotFather gives it"},
		{"telegram secret charset", "public_url: https://ony.example\ntelegram: {bot_token: '123456:ABCDEFGHIJKLMNOPQRSTUV', webhook_secret: 'has space'}", "telegram.webhook_secret", "must be 1 to 256 characters"},
		{"telegram webhook over http", "public_url: http://ony.example\ntelegram: {bot_token: '123456:ABCDEFGHIJKLMNOPQRSTUV', webhook_secret: abc}", "telegram.webhook_secret", "needs an https public_url"},
		{"twilio sid shape", "twilio: {account_sid: nope, auth_token: t, from: '+14155550100'}", "twilio.account_sid", "must be the Account SID"},
		{"twilio without token", "twilio: {account_sid: AC0123456789abcdef0123456789abcdef, from: '+14155550100'}", "twilio.auth_token", "must be set when twilio.account_sid is"},
		{"twilio from not e164", "twilio: {account_sid: AC0123456789abcdef0123456789abcdef, auth_token: t, from: '415 555 0100'}", "twilio.from", "must be the E.164 number"},
		{"signalwire without key", "signalwire: {space_url: 'https://x.signalwire.com', project_id: 0d4b2b3c-1111-2222-3333-444455556666, api_token: t, from: '+14155550100'}", "signalwire.signing_key", "verifies SignalWire's webhooks"},
		{"signalwire orphan", "signalwire: {signing_key: k}", "signalwire.signing_key", "needs signalwire.project_id"},
		{"telnyx public key", "telnyx: {api_key: k, public_key: nope, connection_id: c, from: '+14155550100'}", "telnyx.public_key", "base64 Ed25519 public key"},
		{"telnyx orphan", "telnyx: {connection_id: c}", "telnyx.connection_id", "needs telnyx.api_key"},
		{"plivo auth id", "plivo: {auth_id: x, auth_token: t, from: '+14155550100'}", "plivo.auth_id", "must be the Auth ID"},
		{"voice agent scheme", "voice_agent: {url: 'https://api.openai.com/v1/realtime'}", "voice_agent.url", "must be a realtime websocket URL"},
		{"voice agent plain ws", "voice_agent: {url: 'ws://model.example/v1/realtime'}", "voice_agent.url", "must use wss"},
		{"voice agent orphan key", "voice_agent: {api_key: sk-x}", "voice_agent.api_key", "needs voice_agent.url"},
		{"voice agent first audio", "voice_agent: {first_audio: 100ms}", "voice_agent.first_audio", "must be between"},
		{"telegram orphan secret", "telegram: {webhook_secret: abc}", "telegram.webhook_secret", "needs telegram.bot_token"},
		{"telegram api url slash", "telegram: {api_url: 'https://tg.example/'}", "telegram.api_url", "must not end with /"},

		{"shutdown_timeout 0", "shutdown_timeout: 0s", "shutdown_timeout", "between 1s and 1h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.msg == "" {
				mustLoad(t, tt.yaml+"\n", nil)
				return
			}
			file, list := loadErrors(t, tt.yaml+"\n", nil)
			if len(list) != 1 {
				t.Fatalf("want one error, got:\n%v", (&Errors{List: list}))
			}
			fe := findError(t, list, tt.path)
			mustContain(t, fe.Msg, tt.msg)
			if !strings.HasPrefix(fe.Pos(), file+":") {
				t.Errorf("Pos = %q, want a position in the file", fe.Pos())
			}
		})
	}
}

// TestPositions checks that validation errors point at the key that set the
// value: the file's line:col, or the variable, or nothing for a default.
func TestPositions(t *testing.T) {
	t.Parallel()
	file, list := loadErrors(t, "jobs:\n  workers: -1\nkeyring:\n  keys:\n    - v1:AAAA\n    - v1:BBBB\n",
		map[string]string{"ONY_HANDOFFS_DEFAULT_TIMEOUT": "25h"})
	tests := []struct{ path, pos string }{
		{"jobs.workers", file + ":2:3"},
		{"keyring.keys[0]", file + ":5:7"},
		{"keyring.keys[1]", file + ":6:7"},
		{"handoffs.max_timeout", ""}, // the default 24h is below the env's 25h
	}
	if len(list) != len(tests) {
		t.Errorf("got %d errors, want %d:\n%v", len(list), len(tests), &Errors{List: list})
	}
	for _, tt := range tests {
		if fe := findError(t, list, tt.path); fe.Pos() != tt.pos {
			t.Errorf("%s: Pos = %q, want %q", tt.path, fe.Pos(), tt.pos)
		}
	}

	// A bad CIDR from the environment is blamed on its variable.
	_, list = loadErrors(t, "", map[string]string{"ONY_CALLBACKS_ALLOW_CIDRS": "10.0.0.0/8, not-a-cidr"})
	if fe := findError(t, list, "callbacks.allow_cidrs[1]"); fe.Pos() != "ONY_CALLBACKS_ALLOW_CIDRS" || !strings.Contains(fe.Msg, `"not-a-cidr" is not a CIDR`) {
		t.Errorf("env CIDR: %s: %s", fe.Pos(), fe.Msg)
	}
	_, list = loadErrors(t, "", map[string]string{"ONY_CALLBACKS_ALLOW_PRIVATE": "yes please"})
	if fe := findError(t, list, "callbacks.allow_private"); fe.Pos() != "ONY_CALLBACKS_ALLOW_PRIVATE" || !strings.Contains(fe.Msg, "invalid boolean") {
		t.Errorf("env bool: %s: %s", fe.Pos(), fe.Msg)
	}

	// Keys from the environment are blamed on the variable, not the file.
	_, list = loadErrors(t, "keyring:\n  keys: ['"+testKey1+"']\n", map[string]string{"ONY_KEYRING_KEYS": testKey1 + ",v2:AAAA"})
	if fe := findError(t, list, "keyring.keys[1]"); fe.Pos() != "ONY_KEYRING_KEYS" {
		t.Errorf("env key: Pos = %q, want ONY_KEYRING_KEYS", fe.Pos())
	}
}

// TestTrustedProxiesAllAtOnce: every bad entry is reported, each at its own line or at the variable.
func TestTrustedProxiesAllAtOnce(t *testing.T) {
	t.Parallel()
	file, list := loadErrors(t, "trusted_proxies:\n  - lb.internal\n  - 10.0.0.0/8\n  - 10.0.0.0/40\n", nil)
	if len(list) != 2 {
		t.Fatalf("want two errors, got:\n%v", &Errors{List: list})
	}
	for path, pos := range map[string]string{"trusted_proxies[0]": file + ":2:5", "trusted_proxies[2]": file + ":4:5"} {
		if fe := findError(t, list, path); fe.Pos() != pos {
			t.Errorf("%s: Pos = %q, want %q", path, fe.Pos(), pos)
		}
	}
	_, list = loadErrors(t, "", map[string]string{"ONY_TRUSTED_PROXIES": "10.0.0.0/8,nope,,also nope"})
	if len(list) != 2 {
		t.Fatalf("want two errors, got:\n%v", &Errors{List: list})
	}
	for _, path := range []string{"trusted_proxies[1]", "trusted_proxies[2]"} {
		if fe := findError(t, list, path); fe.Pos() != "ONY_TRUSTED_PROXIES" {
			t.Errorf("%s: Pos = %q, want ONY_TRUSTED_PROXIES", path, fe.Pos())
		}
	}
}

func TestYAMLStructureErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		path       string
		pos        string // suffix after the file name
		msg        string
	}{
		{"list for string", "listen: [1]\n", "listen", ":1:9", "expected a string, got a list"},
		{"mapping for string", "data_dir:\n  a: b\n", "data_dir", ":2:3", "expected a string, got a mapping"},
		{"string for int", "jobs:\n  workers: '10'\n", "jobs.workers", ":2:12", "expected an integer, got a string"},
		{"float for int", "jobs:\n  workers: 1.5\n", "jobs.workers", ":2:12", "expected an integer, got a number"},
		{"int overflow", "database:\n  max_open_conns: 99999999999999999999\n", "database.max_open_conns", ":2:19", "expected an integer"},
		{"number for duration", "jobs:\n  poll_interval: 100\n", "jobs.poll_interval", ":2:18", `invalid duration "100"`},
		{"string for bool", "auth:\n  secure_cookies: yes\n", "auth.secure_cookies", ":2:19", "expected true or false, got a string"},
		{"list for bool", "auth:\n  secure_cookies: [true]\n", "auth.secure_cookies", ":2:19", "expected true or false, got a list"},
		{"string for plain bool", "callbacks:\n  allow_private: 'true'\n", "callbacks.allow_private", ":2:18", "expected true or false, got a string"},
		{"scalar for string list", "callbacks:\n  allow_cidrs: 10.0.0.0/8\n", "callbacks.allow_cidrs", ":2:16", "expected a list, got a string"},
		{"scalar for list", "keyring:\n  keys: v1:abc\n", "keyring.keys", ":2:9", "expected a list, got a string"},
		{"mapping in list", "keyring:\n  keys:\n    - {a: b}\n", "keyring.keys[0]", ":3:7", "expected a string, got a mapping"},
		{"scalar for section", "database: postgres://x\n", "database", ":1:11", "expected a mapping of options, got a string"},
		{"list for section", "log:\n  - info\n", "log", ":2:3", "expected a mapping of options, got a list"},
		{"top level list", "- a\n- b\n", "", ":1:1", "the top level must be a mapping"},
		{"top level scalar", "hello\n", "", ":1:1", "the top level must be a mapping"},
		{"duplicate key", "listen: a:1\nlog: {}\nlisten: b:2\n", "listen", ":3:1", "duplicate key (first set on line 1)"},
		{"duplicate section", "log: {level: info}\nlog: {level: debug}\n", "log", ":2:1", "duplicate key"},
		{"anchor on unknown key", "base: &b {level: info}\n", "base", ":1:1", "unknown key"},
		{"merge key in section", "log:\n  <<: {level: info}\n", "log.<<", ":2:3", "merge keys (<<) are not supported"},
		{"complex key", "? [a]\n: b\n", "", ":1:3", "keys must be plain names, got a list"},
		{"syntax error", "log:\n  level: info\n   format: json\n", "", ":3", "invalid YAML: mapping values are not allowed in this context"},
		{"tab indentation", "log:\n\tlevel: info\n", "", ":2", "invalid YAML: found character that cannot start any token"},
		{"second document", "listen: a:1\n---\nlog: {}\n", "", ":2:1", "a second YAML document is not allowed"},
		{"unknown alias", "listen: *nope\n", "", "", "invalid YAML: unknown anchor 'nope' referenced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file, list := loadErrors(t, tt.yaml, nil)
			var fe *yamlnode.Diagnostic
			for i := range list {
				if list[i].Path == tt.path && strings.Contains(list[i].Msg, tt.msg) {
					fe = &list[i]
				}
			}
			if fe == nil {
				t.Fatalf("no error %q at %q in:\n%v", tt.msg, tt.path, &Errors{List: list})
			}
			if fe.Pos() != file+tt.pos {
				t.Errorf("Pos = %q, want %q", fe.Pos(), file+tt.pos)
			}
		})
	}
}

func TestAliasesResolve(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "listen: &l 127.0.0.1:9000\nbootstrap:\n  org_name: *l\n", nil)
	if c.Bootstrap.OrgName != "127.0.0.1:9000" {
		t.Errorf("alias not followed: %q", c.Bootstrap.OrgName)
	}
}
