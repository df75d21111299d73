package redact

import (
	"math"
	"strings"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// Name classes: what an identifier says about the value assigned to it.
const (
	nameNone   = iota
	nameWeak   // key-like: the value counts only if it looks random (high_entropy)
	nameStrong // says secret/password/token/…: any real value counts (secret_assignment)
)

// splitName cuts an identifier into lower-case words at separators and camelCase humps:
// "AWS_SECRET_ACCESS_KEY" → aws secret access key, "apiKey" → api key, "APIKey" → api key.
func splitName(name string) []string {
	var words []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = cur[:0]
		}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z' || '0' <= c && c <= '9':
			cur = append(cur, c)
		case 'A' <= c && c <= 'Z':
			prevLower := i > 0 && ('a' <= name[i-1] && name[i-1] <= 'z' || '0' <= name[i-1] && name[i-1] <= '9')
			nextLower := i+1 < len(name) && 'a' <= name[i+1] && name[i+1] <= 'z'
			prevUpper := i > 0 && 'A' <= name[i-1] && name[i-1] <= 'Z'
			if prevLower || prevUpper && nextLower {
				flush()
			}
			cur = append(cur, c+'a'-'A')
		default:
			flush()
		}
	}
	flush()
	return words
}

var (
	// strongWords are whole words that make a name secret.
	strongWords = set("secret", "secrets", "password", "passwords", "passwd", "pwd", "passphrase", "pass",
		"pw", "token", "credential", "credentials", "creds", "apikey", "apikeys", "privatekey", "accesskey",
		"secretkey", "clientsecret", "authtoken", "authkey", "auth", "accesstoken", "refreshtoken", "idtoken",
		"apitoken", "apisecret", "sessiontoken", "bearer", "pat", "pgpassword", "dbpassword", "dbpass",
		"signingkey", "masterkey", "encryptionkey", "webhooksecret", "secretaccesskey", "passcode")
	// strongParts make a name secret wherever they occur in its words run together.
	strongParts = []string{"secret", "password", "passwd", "passphrase", "apikey", "accesskey", "privatekey",
		"secretkey", "authtoken", "authkey", "credential", "token"}
	// keyPrefixes are the words that, run together with "key", make a key-like word.
	keyPrefixes = set("api", "access", "secret", "private", "signing", "sign", "master", "auth", "encryption",
		"enc", "hmac", "shared", "account", "storage", "license", "client", "app", "service", "session",
		"admin", "root", "deploy", "webhook", "sig", "crypt", "cipher", "aes", "rsa", "gpg", "pgp", "x", "sub",
		"data", "db", "jwt", "cookie", "csrf", "xsrf", "kms", "wrap")
	weakWords = set("key", "keys", "salt", "seed", "session", "cookie", "private", "signature", "sig")
	// notSecretWords anywhere in a name mean its value is not a secret.
	notSecretWords = set("author", "authors", "authority", "authorities", "authenticated", "authentication",
		"authenticator", "authorize", "authorized", "authorization", "authz", "tokenizer", "tokenize",
		"tokenized", "tokens", "passport", "passenger", "bypass", "compass", "passthrough", "passive",
		"passage", "public", "pub", "publishable", "idempotency", "cache", "partition", "sort", "primary",
		"foreign", "routing", "dedup", "dedupe", "object", "lookup", "row", "i18n", "translation", "hotkey",
		"keyboard", "keyword", "keywords", "keystroke", "keyframe", "keyspace", "keychain", "keyring",
		"keystore", "monkey", "turkey", "donkey", "jockey", "hockey", "whiskey", "fingerprint", "checksum",
		"digest", "hash", "sha", "sha1", "sha256", "sha512", "md5", "integrity", "commit", "revision", "rev",
		"host", "known", "usage", "counter", "count", "max", "min", "num", "total", "budget", "limit",
		"expires", "expiry", "expiration", "issuer", "audience", "scope", "scopes", "passed", "passes",
		"passing", "lastpass", "keepass", "next", "page", "cursor", "continuation", "pagination", "marker")
	// notSecretLast as a name's last word means the name is about a secret, not one:
	// secret_name, token_url, password_file, api_key_id…
	notSecretLast = set("id", "ids", "name", "names", "file", "files", "path", "paths", "url", "urls", "uri",
		"endpoint", "type", "types", "length", "len", "size", "ttl", "timeout", "format", "header", "headers",
		"prefix", "suffix", "policy", "hint", "enabled", "enable", "disabled", "required", "env", "var",
		"vars", "dir", "location", "mode", "algorithm", "alg", "version", "field", "label", "method", "kind",
		"ref", "reference", "provider", "store", "manager", "service", "port", "user", "username", "login",
		"email", "lifetime", "rotation", "regex", "pattern", "reset", "at", "in", "strength", "validator",
		"validation", "cache", "mount", "source", "template", "class", "schema", "description", "desc",
		"help", "placeholder", "example", "sample", "prompt", "message", "msg", "error", "err", "errors",
		"count", "exists", "set", "present", "missing", "changed", "updated", "created", "issued",
		"expires", "expiry", "expiration", "str", "index", "idx", "selector", "secretref", "keyref", "from",
		"namespace", "volume", "mountpath", "items", "stdin", "cmd", "command", "script", "policies", "length",
		"storage", "backend", "arn", "region", "hint", "rule", "rules", "audience", "issuer", "claims")
	// notSecretFirst as a name's first word: getters, flags and counters.
	notSecretFirst = set("get", "read", "load", "fetch", "find", "has", "is", "remove", "delete", "unset",
		"clear", "check", "validate", "verify", "show", "hide", "use", "no", "skip", "allow", "require",
		"requires", "should", "can", "max", "min", "num", "total", "existing", "default")
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// classifyName says whether a value assigned to name is a secret.
func classifyName(name string) int {
	words := splitName(name)
	if len(words) == 0 || len(words) > 12 {
		return nameNone
	}
	for _, w := range words {
		if notSecretWords[w] {
			return nameNone
		}
	}
	if len(words) > 1 && notSecretFirst[words[0]] {
		return nameNone
	}
	last := words[len(words)-1]
	if last != "key" && last != "keys" && notSecretLast[last] {
		return nameNone
	}
	for _, w := range words {
		if strongWords[w] {
			return nameStrong
		}
		// signingkey, masterkey, hmackey: a key of a secret sort, run together.
		if p, ok := strings.CutSuffix(w, "key"); ok && keyPrefixes[p] {
			return nameStrong
		}
	}
	joined := strings.Join(words, "")
	for _, p := range strongParts {
		if strings.Contains(joined, p) {
			return nameStrong
		}
	}
	// signing_key, master-key, hmacKey.
	if len(words) > 1 && (last == "key" || last == "keys") && keyPrefixes[words[len(words)-2]] {
		return nameStrong
	}
	for _, w := range words {
		if weakWords[w] {
			return nameWeak
		}
	}
	return nameNone
}

var placeholderWords = set("", "null", "nil", "none", "undefined", "true", "false", "yes", "no", "on", "off",
	"required", "optional", "empty", "string", "str", "int", "integer", "bool", "boolean", "number", "float",
	"todo", "tbd", "fixme", "foo", "bar", "baz", "foobar", "dummy", "test", "testing", "example", "sample",
	"default", "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "api-key",
	"changeme", "change_me", "change-me", "changeit", "mypassword", "mysecret", "mytoken", "hidden", "masked",
	"redacted", "removed", "omitted", "n/a", "na", "unset", "secretstr", "secretstring", "bytes", "any",
	"object", "unknown", "value", "values", "key", "xxx", "tba", "notset", "not_set", "not-set", "nope",
	"username", "&str", "[]byte", "char*", "option<string>",
	"optional[str]", "str|none", "string?", "string|null", "env", "from_env", "stdin", "prompt", "ask",
	"interactive", "auto", "generated", "generate", "random", "ignored", "ignore", "disabled", "enabled",
	"secure", "insecure", "plain", "plaintext", "basic", "bearer", "digest", "oauth", "oauth2", "jwt",
	"session", "cookie", "header", "query", "body", "form", "json", "yaml", "file", "path", "url", "literal",
	"string()", "str()", "secret()", "new", "old", "same", "blank", "your-token", "your_token", "mytoken123")

// placeholderParts anywhere in a value mark it as an example or a reference.
var placeholderParts = []string{"xxxx", "****", "•••", "…", "...", "your_", "your-", "yourapi", "your api",
	"your key", "your token", "your password", "your secret", "example", "placeholder", "changeme",
	"change_me", "change-me", "redacted", "replace_me", "replace-me", "replaceme", "insert_", "insert-",
	"dummy", "notreal", "not-real", "not_real", "not-a-real", "not_a_real", "<redacted", "secretkeyref",
	"valuefrom", "{{", "}}", "${", "$(", "%(", "#{", "<%", "secrets.", "vars.", "env.", "process.env",
	"os.environ", "getenv", "vault:", "op://", "ref+", "sm://", "arn:aws:secretsmanager", "!vault",
	"enc[", "lookup(", "fromsecret", "secret(", "secrets[", "env[", "settings.", "config.", "self.",
	"this.", "args.", "params.", "options.", "opts.", "props.", "cfg.", "conf.", "environ[", "environ.get"}

// placeholder reports whether v is not a real secret: empty, a word such as "changeme" or
// "null", a reference ($VAR, ${VAR}, %VAR%, {{ .x }}, secrets.X), a template (<token>, {token}),
// an example (YOUR_API_KEY, xxxx, ****), a type name or a code expression.
func placeholder(v string) bool {
	t := strings.TrimSpace(v)
	if len(t) < 4 {
		return true
	}
	l := strings.ToLower(t)
	if placeholderWords[l] {
		return true
	}
	switch t[0] {
	case '$', '@', '&', '*': // $VAR, ${VAR}, $(cmd), @file, &ref, *alias
		return true
	case '!': // a YAML tag: !vault |, !Ref Name
		i := 1
		for i < len(t) && ('a' <= t[i] && t[i] <= 'z' || 'A' <= t[i] && t[i] <= 'Z') {
			i++
		}
		if i > 1 && (i == len(t) || t[i] == ' ') {
			return true
		}
	case '%':
		if strings.HasSuffix(t, "%") {
			return true
		}
	case '<':
		if strings.HasSuffix(t, ">") {
			return true
		}
	case '{':
		if strings.HasSuffix(t, "}") {
			return true
		}
	case '[':
		if strings.HasSuffix(t, "]") || strings.HasPrefix(t, "[REDACTED") {
			return true
		}
	case '(':
		if strings.HasSuffix(t, ")") {
			return true
		}
	}
	for _, p := range placeholderParts {
		if strings.Contains(l, p) {
			return true
		}
	}
	if sameChars(t) || lowDiversity(t) || strings.ContainsAny(t, "<[") && typeName.MatchString(t) {
		return true
	}
	return false
}

// typeName matches generic type expressions: Option<String>, Optional[str], Map<K, V>.
var typeName = lazyregexp.New(`^[A-Za-z_][A-Za-z0-9_.]*(?:<[A-Za-z0-9_ ,<>\[\]]*>|\[[A-Za-z0-9_ ,\[\]]*\])[?]?$`)

// sameChars: "xxxxxxxx", "00000000", "--------".
func sameChars(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}

// lowDiversity: a long value made of very few distinct bytes ("abababab…", "XXXX0000…").
func lowDiversity(s string) bool {
	if len(s) < 12 {
		return false
	}
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n <= 3
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// wordLike reports whether every part of s between separators (-_./:) that is at least 4
// long reads as a word or a number rather than random characters: "my-service-account",
// "release_2024_q3", "your-token-here". Random tokens mix cases and digits.
func wordLike(s string) bool {
	parts := 0
	for i := 0; i <= len(s); {
		j := i
		for j < len(s) && strings.IndexByte("-_./:+=", s[j]) < 0 {
			j++
		}
		if p := s[i:j]; len(p) >= 4 {
			parts++
			lower, upper, digit := false, false, false
			for k := 0; k < len(p); k++ {
				c := p[k]
				lower = lower || 'a' <= c && c <= 'z'
				upper = upper || 'A' <= c && c <= 'Z'
				digit = digit || '0' <= c && c <= '9'
			}
			if lower && upper || digit && (lower || upper) {
				return false // mixed: random-looking
			}
		}
		i = j + 1
	}
	return parts > 0
}

// hasLetterAndDigit: random tokens of 20+ characters nearly always have both.
func hasLetterAndDigit(s string) bool {
	l, d := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if '0' <= c && c <= '9' {
			d = true
		} else if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			l = true
		}
	}
	return l && d
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// isUUID: 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i : i+1]) {
				return false
			}
		}
	}
	return true
}

// testVectors are published example credentials: documentation, RFCs and SDK samples print
// them, so they are look-alikes, not leaks.
var testVectors = set(
	"AKIAIOSFODNN7EXAMPLE",
	"AKIAI44QH8DHBEXAMPLE",
	"ASIAIOSFODNN7EXAMPLE",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
	"sk_test_4eC39HqLyjWDarjtT1zdp7dc",
	"sk_test_BQokikJOvBiI2HlWgH4olfQ2",
	"sk_test_26PHem9AhJZvU623DfE1x4sd",
	"rk_test_4eC39HqLyjWDarjtT1zdp7dc",
	"xoxb-not-a-real-token-this-will-not-work",
	"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe",
	"T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
)

// testVector reports whether v is, or ends in, a published example value.
func testVector(v string) bool {
	if testVectors[v] {
		return true
	}
	return strings.HasSuffix(v, "EXAMPLE") || strings.HasSuffix(v, "EXAMPLEKEY")
}
