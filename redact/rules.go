package redact

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"sync"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// builtins returns the built-in detectors in priority order: where findings overlap, the
// earliest detector among them names the kind.
func builtins() []*detector { return builtinDetectors() }

// Every built-in detector is anchored: its expression starts with ^ and is tried only where a
// keyword hit puts it (at the hit, or at the identifier or scheme holding it), over a bounded
// reach. So each hit costs a short, bounded match and the whole scan stays linear.
var builtinDetectors = sync.OnceValue(func() []*detector {
	re := regexp.MustCompile
	tok := func(kind string, keywords []string, pattern string, prefix int) *detector {
		lit, _ := re(pattern).LiteralPrefix()
		return &detector{kind: kind, keywords: keywords, anchor: atHit, reach: 1024, re: re(`^(?:` + pattern + `)`), edge: edgeAlnum,
			check: randomBody(prefix), skipFailed: true, prefix: lit}
	}
	withEdge := func(d *detector, e edge) *detector { d.edge = e; return d }
	withCheck := func(d *detector, c checkFunc) *detector { d.check = c; return d }
	withReach := func(d *detector, n int) *detector { d.reach = n; return d }
	return []*detector{
		// Private keys: the whole PEM block, or an unarmoured OpenSSH key body.
		{kind: KindPrivateKey, keywords: kw("-----begin "), run: runPEM},
		withReach(withCheck(tok(KindPrivateKey, kw("b3blbnnzac1rzxktdje"), `b3BlbnNzaC1rZXktdjE[A-Za-z0-9+/=]{20,}`, 0), nil), 32<<10),

		// Cloud providers.
		withCheck(tok(KindAWSAccessKey, kw("akia", "asia", "abia", "acca"), `(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}`, 0), awsKeyID),
		{kind: KindAWSSecretKey, keywords: kw("aws", "secret"), anchor: identAnchor, reach: 512,
			re:     re(`^([A-Za-z0-9_.\-]+)\\?["']?(?:\s*(?:=>|:=|=|:)\s*|\s+)\\?["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`),
			accept: acceptAWSSecret},
		withEdge(tok(KindGCPAPIKey, kw("aiza"), `AIza[0-9A-Za-z_\-]{35}`, 4), edgeToken),
		{kind: KindAzureConnectionString, keywords: kw("accountkey", "sharedaccesskey"), anchor: atHit, reach: 1024,
			re: re(`^(?i:AccountKey|SharedAccessKey)\s*=\s*([A-Za-z0-9+/]{20,}={0,2})`), group: 1, check: randomBody(0)},
		{kind: KindAzureStorageKey, keywords: kw("=="), run: runAzureKey},

		// Git forges.
		tok(KindGitHubToken, kw("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), `gh[pousr]_[A-Za-z0-9]{36,251}`, 4),
		tok(KindGitHubToken, kw("github_pat_"), `github_pat_[A-Za-z0-9_]{22,244}`, 11),
		tok(KindGitLabToken, kw("glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glimt-", "glagent-", "glcbt-", "glsoat-", "gloas-", "glffct-"),
			`gl(?:pat|dt|rt|ptt|ft|imt|agent|cbt|soat|oas|ffct)-[A-Za-z0-9_\-]{20,}`, 5),
		tok(KindGitLabToken, kw("gr1348941"), `GR1348941[A-Za-z0-9_\-]{20,}`, 9),

		// Chat.
		tok(KindSlackToken, kw("xox"), `(?:xoxe\.)?xox[abposre]-[A-Za-z0-9\-]{10,250}`, 5),
		tok(KindSlackToken, kw("xapp-"), `xapp-[0-9]-[A-Za-z0-9\-]{10,250}`, 5),
		{kind: KindSlackWebhook, keywords: kw("hooks.slack.com"), anchor: atHit, reach: 1024,
			re: re(`^hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/\-]{10,})`), group: 1, check: slackHookPath},
		{kind: KindTelegramBotToken, keywords: kw(":aa"), anchor: digitsBefore, reach: 128,
			re: re(`^[0-9]{8,12}:AA[A-Za-z0-9_\-]{33}`), accept: acceptTelegram},

		// Payments and messaging.
		tok(KindTwilioKey, kw("sk"), `SK[0-9a-fA-F]{32}`, 2),
		{kind: KindTwilioKey, keywords: kw("twilio"), anchor: identAnchor, reach: 512,
			re:     re(`^([A-Za-z0-9_.\-]+)\\?["']?\s*(?:=>|:=|=|:)\s*\\?["']?([A-Za-z0-9]{32})(?:[^A-Za-z0-9]|$)`),
			accept: acceptTwilio},
		tok(KindStripeKey, kw("sk_live_", "sk_test_", "rk_live_", "rk_test_"), `[sr]k_(?:live|test)_[0-9A-Za-z]{10,247}`, 8),
		tok(KindStripeKey, kw("whsec_"), `whsec_[A-Za-z0-9+/=]{24,}`, 6),

		// Model providers. Anthropic first: its keys also look like OpenAI's.
		tok(KindAnthropicKey, kw("sk-ant-"), `sk-ant-[A-Za-z0-9_\-]{20,}`, 7),
		withCheck(tok(KindOpenAIKey, kw("sk-"), `sk-[A-Za-z0-9_\-]{20,}`, 3), openAIKey),

		withReach(withCheck(withEdge(tok(KindJWT, kw("eyj"), `eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*)?`, 0), edgeToken), jwtOK), 16<<10),

		// Other well-known prefixed tokens have no kind of their own: they are reported as the
		// high-entropy values they are. ony_dev_/ony_ses_ are Ony's own device and session tokens.
		withEdge(tok(KindHighEntropy, kw("ony_dev_", "ony_ses_"), `ony_(?:dev|ses)_[A-Za-z0-9_\-]{43}`, 8), edgeToken),
		tok(KindHighEntropy, kw("npm_"), `npm_[A-Za-z0-9]{36}`, 4),
		withCheck(tok(KindHighEntropy, kw("pypi-ageichlwas5vcmc"), `pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}`, 0), nil),
		tok(KindHighEntropy, kw("hf_"), `hf_[A-Za-z0-9]{34,40}`, 3),
		tok(KindHighEntropy, kw("dop_v1_", "doo_v1_", "dor_v1_"), `do[opr]_v1_[a-f0-9]{64}`, 7),
		withEdge(tok(KindHighEntropy, kw("sg."), `SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}`, 3), edgeToken),

		// JSON Web Keys: the private members of a key ("kty" says it is one).
		{kind: KindPrivateKey, keywords: kw(`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`, `"k"`), anchor: atHit, reach: 16 << 10,
			re: re(`^"(?:d|p|q|dp|dq|qi|k)"\s*:\s*"([A-Za-z0-9_\-]{16,})"`), group: 1, check: func(string) bool { return true }, accept: acceptJWK},

		// Credentials in URLs and DSNs: only the password.
		{kind: KindURLPassword, keywords: kw("://"), anchor: schemeAnchor, reach: 2048,
			re:     re(`^[A-Za-z][A-Za-z0-9+.\-]*://([^\s:/?#@"'<>\[\]\\]*):([^\s/?#"'<>\[\]\\]+)@[^\s@/?#"'<>\\]`),
			accept: acceptURLPassword},
		{kind: KindURLPassword, keywords: kw("@tcp(", "@unix(", "@udp("), run: runDSN},

		// Authorization and cookie headers: the credential after the scheme.
		{kind: KindAuthorizationHeader, keywords: kw("authorization"), anchor: wordHit, reach: 4096,
			re:     re(`^(?i)(authorization)\\?["']?\s*[:=]\s*\\?["']?(?:(bearer|basic|token|digest|negotiate|bot|apikey|api-key|key|sso-key|otp|jwt|hmac|ntlm|aws4-hmac-sha256|gosign|splunk|dsn|ssws|sharedkey|pat|oauth|zoho-oauthtoken|klaviyo-api-key)\s+)?([^"'\r\n\\]+)`),
			accept: acceptAuthorization},
		{kind: KindAuthorizationHeader, keywords: kw("bearer"), anchor: wordHit, reach: 4096,
			re: re(`^(?i)bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)`), group: 1, edge: edgeToken, check: randomValue},
		{kind: KindAuthorizationHeader, keywords: kw("cookie"), anchor: wordHit, reach: 4096,
			re:     re(`^(?i)(cookie)\\?["']?\s*:\s*\\?["']?([^"'\r\n\\]+)`),
			accept: acceptCookie},

		// Assignments to secret-looking names, in every syntax agents meet. The expressions
		// match the name and separator; the value is read by valueAt.
		{kind: KindSecretAssignment, keywords: assignKeywords, anchor: kvAnchor, reach: 512, re: re(kvPattern), accept: acceptKV},
		{kind: KindSecretAssignment, keywords: assignKeywords, anchor: flagAnchor, reach: 512, re: re(flagPattern), accept: acceptFlag},
		{kind: KindSecretAssignment, keywords: assignKeywords, anchor: nameValueAnchor, lines: 1, reach: 1024, re: re(nameValuePattern), accept: acceptNameValue},
		{kind: KindSecretAssignment, keywords: assignKeywords, anchor: xmlAnchor, reach: 512, re: re(xmlPattern), accept: acceptXML},
		{kind: KindSecretAssignment, keywords: assignKeywords, anchor: callAnchor, reach: 512, re: re(callPattern), accept: acceptCall},
		{kind: KindSecretAssignment, keywords: kw("password"), anchor: netrcAnchor, reach: fwdReach,
			re: re(`^password[ \t]+(\S+)[ \t]*(?:\r?$|\s+machine\b)`), accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw(":5432:", ":6432:", ":3306:", ":*:"), anchor: pgpassAnchor, reach: fwdReach,
			re: re(`^[A-Za-z0-9_.\-*]+:(?:[0-9]+|\*):[^:\s]+:[^:\s]+:(\S+)\r?$`), accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("sig=", "signature=", "security-token="), anchor: queryAnchor, reach: 2048,
			re:     re(`^[?&](?i:sig|signature|x-amz-signature|x-goog-signature|x-amz-security-token)=([^&#\s"'<>\\]+)`),
			accept: acceptGroup(1, 8)},
		{kind: KindSecretAssignment, keywords: kw("identified", "password"), anchor: wordHit, reach: 1024,
			re:     re(`^(?i:identified\s+by|password)\s+'([^'\n]+)'`),
			accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("mysql", "mariadb"), anchor: wordHit, reach: 2048,
			re:     re(`^(?i:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]*?\s-p('[^'\n]+'|"[^"\n]+"|[^\s'"\-][^\s]*)`),
			accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("sshpass"), anchor: wordHit, reach: 1024,
			re: re(`^(?i:sshpass)\s+-p\s*('[^'\n]+'|"[^"\n]+"|\S+)`), accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("redis-cli"), anchor: wordHit, reach: 2048,
			re: re(`^(?i:redis-cli)\b[^\n]*?\s-a\s+('[^'\n]+'|"[^"\n]+"|\S+)`), accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("docker", "podman", "nerdctl", "helm", "oras", "skopeo", "buildah", "crane"), anchor: wordHit, reach: 2048,
			re:     re(`^(?i:docker|podman|nerdctl|helm|oras|skopeo|buildah|crane)\b[^\n]*?\blogin\b[^\n]*?\s-p\s+('[^'\n]+'|"[^"\n]+"|\S+)`),
			accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("curl"), anchor: wordHit, reach: 2048,
			re:     re(`^(?i:curl)\b[^\n]*?\s(?:-u|--user)\s*["']?[^\s:"']*:([^\s"']+)`),
			accept: acceptGroup(1, 4)},
		{kind: KindSecretAssignment, keywords: kw("pass:"), anchor: opensslAnchor, reach: 512, re: re(`^(?i:pass):(\S+)`), accept: acceptGroup(1, 4)},

		// Base64 and %-encoded runs, decoded and scanned again. Keywordless: it looks at
		// every long run of encoding characters.
		{kind: KindEncodedSecret, run: runEncoded},

		// Random-looking values next to secret-like names, where no syntax above applied.
		{kind: KindHighEntropy, keywords: kw("key", "secret", "token", "passw", "pwd", "auth", "credential",
			"salt", "private", "seed", "session", "signature", "cookie"), run: runHighEntropy},
	}
})

func kw(words ...string) []string { return words }

// assignKeywords must each occur in the name of every assignment the patterns below match.
var assignKeywords = kw("secret", "pass", "pw", "token", "key", "auth", "cred", "bearer")

// The assignment patterns start at the name and capture it as group 1; the value that follows
// the match is read by valueAt.
const (
	// NAME = value, NAME: value, "name": "value", name := "value", 'name' => 'value', --name=value.
	kvPattern = `^([A-Za-z0-9_.\-]+)\\?["']?\s*(?:=>|:=|\?=|\+=|=|:)\s*`
	// --name value, -name value.
	flagPattern = `^--?([A-Za-z0-9_.\-]+)\s+`
	// - name: DB_PASSWORD / value: x (Kubernetes, ECS, docker inspect), on one or two lines.
	nameValuePattern = `^([A-Za-z0-9_.\-]+)\\?["']?\s*,?\s*\\?["']?(?i:value)\\?["']?\s*:\s*`
	// <password>value</password>
	xmlPattern = `^([A-Za-z0-9_.\-]+)>`
	// setPassword("value"), client.token('value')
	callPattern = `^(?:[A-Za-z0-9_\-]*\.)*([A-Za-z0-9_]+)\s*\(\s*`
)

func atHit(_ *scan, h int) (int, bool) { return h, true }

// identAnchor starts at the identifier holding the keyword.
func identAnchor(s *scan, h int) (int, bool) {
	is, ie := s.ident(h)
	return is, ie-is <= maxName
}

// maxName bounds the identifiers worth classifying.
const maxName = 100

// strongIdent returns the identifier holding the keyword if it names a secret.
func strongIdent(s *scan, h int) (int, int, bool) {
	is, ie := s.ident(h)
	if ie-is > maxName || s.classify(is, ie) != nameStrong {
		return is, ie, false
	}
	return is, ie, true
}

func kvAnchor(s *scan, h int) (int, bool) {
	is, _, ok := strongIdent(s, h)
	// user:password@host in a URL is url_password's.
	if ok && is >= 2 && s.text[is-2:is] == "//" {
		return is, false
	}
	return is, ok
}

func flagAnchor(s *scan, h int) (int, bool) {
	is, _, ok := strongIdent(s, h)
	return is, ok && s.text[is] == '-' && (is == 0 || isSpace(s.text[is-1]))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func xmlAnchor(s *scan, h int) (int, bool) {
	is, _, ok := strongIdent(s, h)
	return is, ok && is > 0 && s.text[is-1] == '<'
}

func callAnchor(s *scan, h int) (int, bool) {
	is, ie := s.ident(h)
	if ie-is > maxName {
		return is, false
	}
	name := s.text[is:ie]
	name = name[strings.LastIndexByte(name, '.')+1:]
	return is, cachedClass(name) == nameStrong
}

// nameValueAnchor starts at a secret-looking environment variable name that follows
// "name:" — the value comes from the "value:" key after it.
func nameValueAnchor(s *scan, h int) (int, bool) {
	is, _, ok := strongIdent(s, h)
	if !ok {
		return is, false
	}
	b := strings.TrimRight(s.text[max(0, is-24):is], " \t\"'\\")
	if !strings.HasSuffix(b, ":") {
		return is, false
	}
	b = strings.TrimRight(b[:len(b)-1], " \t\"'\\")
	return is, len(b) >= 4 && strings.EqualFold(b[len(b)-4:], "name")
}

// schemeAnchor starts at the URL scheme before "://".
func schemeAnchor(s *scan, h int) (int, bool) {
	i := h
	for i > 0 && h-i < 32 && (isAlnum(s.text[i-1]) || s.text[i-1] == '+' || s.text[i-1] == '.' || s.text[i-1] == '-') {
		i--
	}
	return i, i < h
}

// digitsBefore starts at the digits before the keyword (a Telegram bot id).
func digitsBefore(s *scan, h int) (int, bool) {
	i := h
	for i > 0 && h-i < 13 && '0' <= s.text[i-1] && s.text[i-1] <= '9' {
		i--
	}
	return i, h-i >= 8
}

// queryAnchor starts at the '?' or '&' before a query parameter name.
func queryAnchor(s *scan, h int) (int, bool) {
	for i := h; i > 0 && h-i < 24; i-- {
		switch c := s.text[i-1]; {
		case c == '?' || c == '&':
			return i - 1, true
		case !(isAlnum(c) || c == '-' || c == '_'):
			return h, false
		}
	}
	return h, false
}

// netrcAnchor: "password X" opening a line of a .netrc (the text mentions a machine).
func netrcAnchor(s *scan, h int) (int, bool) {
	head := lineHead(s.text, h)
	if strings.TrimLeft(head, " \t") != "" && !strings.Contains(head, " login ") {
		return h, false
	}
	return h, hasPrefixFold(s.text[h:], "password") && strings.Contains(s.lower(), "machine ")
}

// pgpassAnchor: host:port:database:user:password, a line of its own.
func pgpassAnchor(s *scan, h int) (int, bool) {
	lo := max(0, h-256)
	i := strings.LastIndexByte(s.text[lo:h], '\n')
	if i < 0 && lo > 0 {
		return h, false
	}
	return lo + i + 1, true
}

// runDSN finds the password in Go MySQL DSNs, user:password@tcp(host)/db: the keyword is the
// "@tcp(" after it.
func runDSN(s *scan, d *detector, hits []int) {
	t := s.text
	for _, h := range hits {
		i := h
		for i > 0 && h-i < 256 && !strings.ContainsRune(" \t\r\n@/:\"'\\", rune(t[i-1])) {
			i--
		}
		if i == h || i == 0 || t[i-1] != ':' {
			continue
		}
		u := i - 1
		for u > 0 && (isAlnum(t[u-1]) || strings.IndexByte("_.-", t[u-1]) >= 0) {
			u--
		}
		if u == i-1 || placeholderShort(t[i:h]) || len(t[i:h]) < 3 {
			continue
		}
		s.add(span{i, h}, d)
	}
}

var opensslPass = lazyregexp.New(`-pass(?:in|out)?\s+$`)

// opensslAnchor: openssl's -pass, -passin and -passout take "pass:SECRET".
func opensslAnchor(s *scan, h int) (int, bool) {
	return h, opensslPass.MatchString(strings.ToLower(s.text[max(0, h-16):h]))
}

// wordHit anchors at a keyword that starts a word.
func wordHit(s *scan, h int) (int, bool) {
	return h, h == 0 || !(isAlnum(s.text[h-1]) || s.text[h-1] == '_')
}

// check is a per-detector test of the matched secret text.
type checkFunc = func(v string) bool

// randomBody accepts a prefixed token whose body (after prefix bytes) looks random, not like
// an example: "ghp_xxxxxxxx…", "sk-your-key-here", "AIza…EXAMPLE".
func randomBody(prefix int) checkFunc {
	return func(v string) bool {
		if testVector(v) {
			return false
		}
		body := v[min(prefix, len(v)):]
		l := strings.ToLower(body)
		for _, p := range []string{"xxxx", "example", "placeholder", "redacted", "your_", "your-", "dummy", "notreal", "not-a-real"} {
			if strings.Contains(l, p) {
				return false
			}
		}
		return !lowDiversity(body) && !sameChars(body) && !wordLike(body)
	}
}

func awsKeyID(v string) bool { return !testVector(v) && !lowDiversity(v[4:]) }

func openAIKey(v string) bool {
	return !strings.HasPrefix(v, "sk-ant-") && randomBody(3)(v) && hasLetterAndDigit(v[3:])
}

// jwtOK: the first part decodes to a JSON object with "alg".
func jwtOK(v string) bool {
	if testVector(v) {
		return false
	}
	head, _, _ := strings.Cut(v, ".")
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	_, ok := h["alg"]
	return ok
}

func slackHookPath(v string) bool {
	if testVector(v) {
		return false
	}
	last := v[strings.LastIndexByte(v, '/')+1:]
	return len(last) >= 8 && !lowDiversity(last) && !strings.Contains(strings.ToLower(v), "xxxx")
}

// randomValue: a value of 16+ characters that looks random rather than like words.
func randomValue(v string) bool {
	return !placeholder(v) && !wordLike(v) && hasLetterAndDigit(v) && !testVector(v)
}

func group(m []int, g int) (span, bool) {
	if 2*g+1 >= len(m) || m[2*g] < 0 {
		return span{}, false
	}
	return span{m[2*g], m[2*g+1]}, true
}

// acceptGroup takes group g, unquoting it, as a secret of at least minLen bytes.
func acceptGroup(g, minLen int) func(s *scan, m []int) (span, bool) {
	return func(s *scan, m []int) (span, bool) {
		sp, ok := group(m, g)
		if !ok {
			return sp, false
		}
		sp = unquote(s.text, sp)
		v := s.text[sp.start:sp.end]
		if len(v) < minLen || placeholder(v) {
			return sp, false
		}
		return sp, true
	}
}

// unquote narrows a span that is wrapped in matching quotes to the inside.
func unquote(t string, sp span) span {
	if sp.end-sp.start >= 2 {
		a, b := t[sp.start], t[sp.end-1]
		if a == b && (a == '"' || a == '\'') {
			return span{sp.start + 1, sp.end - 1}
		}
	}
	return sp
}

func acceptAWSSecret(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	sp, _ := group(m, 2)
	name := strings.ToLower(s.text[nm.start:nm.end])
	v := s.text[sp.start:sp.end]
	if testVector(v) || !hasLetterAndDigit(v) || entropy(v) < 3.5 || wordLike(v) {
		return sp, false
	}
	joined := strings.Join(splitName(name), "")
	if strings.Contains(name, "aws") || strings.Contains(joined, "secretaccesskey") {
		return sp, true
	}
	if !strings.Contains(name, "secret") {
		return sp, false
	}
	// "secret_key = …" counts as AWS's when AWS is mentioned nearby.
	l := s.lower()
	lo, hi := max(0, sp.start-400), min(len(l), sp.end+400)
	near := l[lo:hi]
	return sp, strings.Contains(near, "aws") || strings.Contains(near, "akia") || strings.Contains(near, "asia")
}

// runAzureKey finds 88-character base64 keys ending in "==" (the keyword) in text that
// mentions Azure storage.
func runAzureKey(s *scan, d *detector, hits []int) {
	t := s.text
	for _, h := range hits {
		start, end := h-86, h+2
		if start < 0 || start > 0 && b64Byte[t[start-1]] || end < len(t) && (b64Byte[t[end]] || t[end] == '=') {
			continue
		}
		ok := true
		for i := start; i < h; i++ {
			if !b64Byte[t[i]] || t[i] == '-' || t[i] == '_' {
				ok = false
				break
			}
		}
		if !ok || !randomBody(0)(t[start:end]) {
			continue
		}
		l := s.lower()
		for _, w := range []string{"azure", "storage", "accountname", "blob.core", "keyname", "accountkey"} {
			if strings.Contains(l, w) {
				s.add(span{start, end}, d)
				break
			}
		}
	}
}

func acceptTelegram(s *scan, m []int) (span, bool) {
	sp := span{m[0], m[1]}
	t := s.text
	if sp.start > 0 && '0' <= t[sp.start-1] && t[sp.start-1] <= '9' {
		return sp, false
	}
	if sp.end < len(t) && (isAlnum(t[sp.end]) || t[sp.end] == '_' || t[sp.end] == '-') {
		return sp, false
	}
	_, body, _ := strings.Cut(t[sp.start:sp.end], ":")
	return sp, randomBody(0)(body)
}

func acceptTwilio(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	sp, _ := group(m, 2)
	words := splitName(s.text[nm.start:nm.end])
	for _, w := range words {
		if w == "sid" || w == "id" || w == "phone" || w == "number" {
			return sp, false
		}
	}
	v := s.text[sp.start:sp.end]
	return sp, hasLetterAndDigit(v) && !lowDiversity(v) && !wordLike(v)
}

func acceptURLPassword(s *scan, m []int) (span, bool) {
	sp, ok := group(m, 2)
	if !ok {
		return sp, false
	}
	v := s.text[sp.start:sp.end]
	if len(v) < 3 || placeholderShort(v) {
		return sp, false
	}
	return sp, true
}

// placeholderShort is placeholder without the minimum length: a URL's "pw" is a password.
func placeholderShort(v string) bool {
	if len(v) >= 4 {
		return placeholder(v)
	}
	return placeholderWords[strings.ToLower(v)] || v[0] == '$' || v[0] == '%' || v[0] == '<' || v[0] == '{' || sameChars(v)
}

func acceptAuthorization(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	if nm.start > 0 && (isAlnum(s.text[nm.start-1]) || s.text[nm.start-1] == '_') {
		return nm, false
	}
	sp, ok := group(m, 3)
	if !ok {
		return sp, false
	}
	// Trim what follows the credential on the line: spaces, a closing brace or comma.
	for sp.end > sp.start && strings.IndexByte(" \t,;)}]", s.text[sp.end-1]) >= 0 {
		sp.end--
	}
	_, scheme := group(m, 2)
	v := s.text[sp.start:sp.end]
	if !scheme {
		// No scheme: one token, and it must look like a credential, not prose.
		if i := strings.IndexAny(v, " \t"); i >= 0 {
			sp.end = sp.start + i
			v = v[:i]
		}
		if len(v) < 8 || placeholder(v) || !hasLetterAndDigit(v) {
			return sp, false
		}
		return sp, true
	}
	if placeholder(v) || len(v) < 4 || strings.ContainsAny(v[:1], "$<{") {
		return sp, false
	}
	return sp, true
}

func acceptCookie(s *scan, m []int) (span, bool) {
	if m[0] > 0 && (isAlnum(s.text[m[0]-1]) || s.text[m[0]-1] == '_') {
		return span{}, false
	}
	sp, _ := group(m, 2)
	for sp.end > sp.start && strings.IndexByte(" \t,;", s.text[sp.end-1]) >= 0 {
		sp.end--
	}
	v := s.text[sp.start:sp.end]
	// Some name=value pair must carry a real value.
	for _, part := range strings.Split(v, ";") {
		_, val, ok := strings.Cut(part, "=")
		if ok && len(strings.TrimSpace(val)) >= 8 && !placeholder(val) {
			return sp, true
		}
	}
	return sp, false
}

// lineHead returns the text between the start of the line and i, or its last 256 bytes.
func lineHead(t string, i int) string {
	lo := max(0, i-256)
	return t[strings.LastIndexByte(t[lo:i], '\n')+1+lo : i]
}

// atLineStart reports whether the name at i opens its line, ignoring indentation, diff and
// list markers and shell or Dockerfile keywords: then a bare value runs to the next space.
func atLineStart(t string, i int) bool {
	h := strings.TrimLeft(lineHead(t, i), " \t")
	h = strings.TrimLeft(h, "+-> \t") // diff lines, YAML lists, quoted mail
	if h == "" {
		return true
	}
	for _, p := range []string{"export ", "set ", "setx ", "ENV ", "ARG ", "declare -x ", "declare ", "local ", "readonly ", "typeset ", "$env:", "$Env:", "$ENV:"} {
		if rest, ok := strings.CutPrefix(h, p); ok && strings.TrimSpace(rest) == "" {
			return true
		}
	}
	return false
}

// codeRef matches values that are code rather than literals: os.environ, self.password,
// config.get(…), getpass().
var codeRef = lazyregexp.New(`^[A-Za-z_][A-Za-z0-9_]*(?:(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?:\(.*|\[.*)?|\(.*|\[.*)$`)

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func passwordish(words []string) bool {
	for _, w := range words {
		switch w {
		case "password", "passwd", "pwd", "pass", "passcode", "pw", "pin", "passphrase":
			return true
		}
		if strings.Contains(w, "password") {
			return true
		}
	}
	return false
}

// literal judges an assigned value: the span to redact, or false for placeholders, references
// and code. inline means the assignment sits inside a line, where the value ends at
// punctuation too (",", ";", "&", closing brackets).
func (s *scan) literal(name string, sp span, bare, inline bool) (span, bool) {
	t := s.text
	if bare && inline {
		if i := strings.IndexAny(t[sp.start:sp.end], ",;&)}]>"); i >= 0 {
			sp.end = sp.start + i
		}
	}
	if bare {
		// A trailing backslash belongs to an escaped quote or a line continuation; a trailing
		// ";" or "," ends a statement or a list item.
		for sp.end > sp.start && strings.IndexByte(`\;,`, t[sp.end-1]) >= 0 {
			sp.end--
		}
	}
	v := t[sp.start:sp.end]
	if placeholder(v) || testVector(v) || sealed(s, v) {
		return sp, false
	}
	words := splitName(name)
	if !passwordish(words) && (digitsOnly(v) || wordLike(v) && strings.ContainsAny(v, "-_. ")) {
		// Tokens and keys are machine-made: digits alone or dictionary words joined
		// ("expired-session-please-login") are prose or identifiers, not keys. Passwords may be
		// words, so they keep them.
		return sp, false
	}
	if bare {
		if strings.EqualFold(v, name) || codeRef.MatchString(v) || strings.IndexByte("([{", v[0]) >= 0 {
			return sp, false
		}
		if inline && classifyName(v) != nameNone && isIdent(v) {
			return sp, false // f(password=db_password): a variable
		}
	}
	return sp, true
}

// sealed: Bitnami SealedSecret ciphertext ("encryptedData: password: AgB…") is public by design.
func sealed(s *scan, v string) bool {
	return len(v) > 200 && strings.HasPrefix(v, "Ag") && strings.Contains(s.lower(), "sealedsecret")
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return s != ""
}

func acceptKV(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	name := s.text[nm.start:nm.end]
	sp, bare, ok := s.valueAt(m[1], s.stop)
	if !ok {
		return sp, false
	}
	if bare && strings.HasSuffix(strings.TrimRight(s.text[nm.end:m[1]], " \t"), ":") && prose(s.text, sp, s.stop) {
		return sp, false // "auth: invalid password for user …" is a log line, not YAML
	}
	inline := !atLineStart(s.text, nm.start) || bare && spacedSeparator(s.text, nm.end, sp.start)
	return s.literal(name, sp, bare, inline)
}

// prose reports whether a bare value is a plain lower-case word followed by more words on
// its line: a sentence ("secrets: loaded 14 secrets"), not a value.
func prose(t string, sp span, stop int) bool {
	v := t[sp.start:sp.end]
	for i := 0; i < len(v); i++ {
		if v[i] < 'a' || v[i] > 'z' {
			return false
		}
	}
	rest := strings.TrimLeft(t[sp.end:stop], " \t")
	return rest != "" && rest[0] != '#'
}

func acceptJWK(s *scan, m []int) (span, bool) {
	sp, _ := group(m, 1)
	return sp, strings.Contains(s.lower(), `"kty"`)
}

// spacedSeparator: "name = value" with spaces is code or INI, where a bare value is an
// expression or ends at punctuation; "NAME=value" is shell or .env.
func spacedSeparator(t string, nameEnd, valueStart int) bool {
	between := t[nameEnd:valueStart]
	return strings.HasPrefix(strings.TrimLeft(between, `"'\`), " ") && strings.Contains(between, "=")
}

func acceptFlag(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	sp, bare, ok := s.valueAt(m[1], s.stop)
	if !ok || bare && s.text[sp.start] == '-' {
		return sp, false
	}
	return s.literal(s.text[nm.start:nm.end], sp, bare, false)
}

func acceptNameValue(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	sp, bare, ok := s.valueAt(m[1], s.stop)
	if !ok {
		return sp, false
	}
	return s.literal(s.text[nm.start:nm.end], sp, bare, !atLineStart(s.text, valueKeyStart(s.text, sp.start)))
}

// valueKeyStart finds where the "value:" key before a value starts, for atLineStart.
func valueKeyStart(t string, valueStart int) int {
	lo := max(0, valueStart-64)
	i := strings.LastIndex(strings.ToLower(t[lo:valueStart]), "value")
	if i < 0 {
		return valueStart
	}
	i += lo
	for i > 0 && (t[i-1] == '"' || t[i-1] == '\'' || t[i-1] == '\\') {
		i--
	}
	return i
}

func acceptXML(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	p := m[1]
	q := s.memoLT.next(s.text, p, func(c byte) bool { return c == '<' || c == '\n' })
	if q == p || q+1 >= len(s.text) || s.text[q] != '<' || s.text[q+1] != '/' {
		return span{}, false
	}
	return s.literal(s.text[nm.start:nm.end], span{p, q}, false, false)
}

func acceptCall(s *scan, m []int) (span, bool) {
	nm, _ := group(m, 1)
	sp, bare, ok := s.valueAt(m[1], s.stop)
	if !ok || bare {
		return sp, false
	}
	rest := strings.TrimLeft(s.text[sp.end+1:min(len(s.text), sp.end+1+16)], " \t")
	if !strings.HasPrefix(rest, ")") {
		return sp, false
	}
	return s.literal(s.text[nm.start:nm.end], sp, false, false)
}
