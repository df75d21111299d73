package redact

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// All values below are made up; none is or was a real credential.

var testKey = []byte("test-org-key")

type want struct {
	secret string // must be covered by a finding
	kind   string // of the covering finding
}

type findCase struct {
	name string
	in   string
	want []want // empty: a look-alike, nothing may be found
}

func w(secret, kind string) []want { return []want{{secret, kind}} }

const (
	ghTok   = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
	awsID   = "AKIAQ3EGRT7UKLMN4XYZ"
	awsSec  = "Zx9vB2nM4kL6jH8gF1dS3aQ5wE7rT9yU2iO4pA6s"
	slackBt = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	tgTok   = "5123456789:AAH4k9Jx2LmQ7vR1tW8yZ3bC6dF0gH5jK2n"
	openAI  = "sk-proj-Qm3T9xVb7LpZ2kRw8NcY4hJd6FsA1gE5uK0oIiPqWt3yXv"
	onyBody = "Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed9Cb8Aa7Zz6Y"
	anthKey = "sk-ant-api03-Xk2Lm9Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0Mn2Pq4St6Uv8Wx0Yz2Ab4Cd6Ef8Gh0JkAA"
)

func jwtFor(header string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(`{"sub":"8c2e1f4a","iat":1773400000,"scope":"deploy"}`)) + ".Hk3mQ9xV2bL7pZ4rW8nY1cJ6dT5fS0gA3eK7uI9oP2w"
}

func fakePEM(label string) string {
	body := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("not a real key, only test bytes; ", 12)))
	var b strings.Builder
	b.WriteString("-----BEGIN " + label + "-----\n")
	for len(body) > 64 {
		b.WriteString(body[:64] + "\n")
		body = body[64:]
	}
	b.WriteString(body + "\n-----END " + label + "-----")
	return b.String()
}

func findCases() []findCase {
	rsa := fakePEM("RSA PRIVATE KEY")
	jwt := jwtFor(`{"alg":"HS256","typ":"JWT"}`)
	azKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!?"))
	b64gh := base64.StdEncoding.EncodeToString([]byte(ghTok))
	return []findCase{
		// Cloud.
		{"aws access key id", "aws_access_key_id = " + awsID + "\n", w(awsID, KindAWSAccessKey)},
		{"aws session key id", `"AccessKeyId": "ASIAZ7QXK2LMN4PRSTUV"`, w("ASIAZ7QXK2LMN4PRSTUV", KindAWSAccessKey)},
		{"aws secret key", "aws_secret_access_key = " + awsSec, w(awsSec, KindAWSSecretKey)},
		{"aws secret via aws configure", "aws configure set aws_secret_access_key " + awsSec, w(awsSec, KindAWSSecretKey)},
		{"aws secret json", `{"SecretAccessKey": "` + awsSec + `"}`, w(awsSec, KindAWSSecretKey)},
		{"aws example key id", "AKIAIOSFODNN7EXAMPLE", nil},
		{"aws example secret", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", nil},
		{"aws-like word in text", "Asia/Tokyo and ASIA are regions", nil},
		{"gcp api key", "https://maps.googleapis.com/maps/api/js?key=AIzaSyB3kx9Lm2Qp7Rt4Vw1Yz6Bc3Df8Gh5Jk0M", w("AIzaSyB3kx9Lm2Qp7Rt4Vw1Yz6Bc3Df8Gh5Jk0M", KindGCPAPIKey)},
		{"gcp service account", `{"type": "service_account", "private_key": "` + strings.ReplaceAll(fakePEM("PRIVATE KEY"), "\n", `\n`) + `\n"}`,
			w(strings.ReplaceAll(fakePEM("PRIVATE KEY"), "\n", `\n`), KindGCPServiceAccount)},
		{"azure connection string", "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + azKey + ";EndpointSuffix=core.windows.net",
			w(azKey, KindAzureConnectionString)},
		{"azure storage key", "AZURE_STORAGE_KEY=" + azKey, w(azKey, KindAzureStorageKey)},
		{"azure-shaped value without azure context", "value=" + azKey, nil},

		// Git forges.
		{"github classic", "export GITHUB_TOKEN=" + ghTok, w(ghTok, KindGitHubToken)},
		{"github oauth", "token gho_Zy8xW7vU6tS5rQ4pO3nM2lK1jI0hG9fE8dC7 ok", w("gho_Zy8xW7vU6tS5rQ4pO3nM2lK1jI0hG9fE8dC7", KindGitHubToken)},
		{"github fine-grained", "github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234",
			w("github_pat_11ABCDEFG0aBcDeFgHiJkL_mNoPqRsTuVwXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234", KindGitHubToken)},
		{"github placeholder", "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", nil},
		{"github inside a word", "xghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5 is not a token", nil},
		{"gitlab", `--header "PRIVATE-TOKEN: glpat-Xk2Lm9Qp4Rt7Vw1Yz6Bc"`, w("glpat-Xk2Lm9Qp4Rt7Vw1Yz6Bc", KindGitLabToken)},

		// Chat.
		{"slack bot", "SLACK_BOT_TOKEN=" + slackBt, w(slackBt, KindSlackToken)},
		{"slack app", "xapp-1-A0123ABCDEF-1234567890123-0a1b2c3d4e5f6a7b8c9d0e1f", w("xapp-1-A0123ABCDEF-1234567890123-0a1b2c3d4e5f6a7b8c9d0e1f", KindSlackToken)},
		{"slack placeholder", "SLACK_BOT_TOKEN=xoxb-your-bot-token-here", nil},
		{"slack webhook", "curl https://hooks.slack.com/services/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",
			w("T0A1B2C3D/B4E5F6G7H8I/Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2", KindSlackWebhook)},
		{"slack webhook doc example", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", nil},
		{"telegram", "curl https://api.telegram.org/bot" + tgTok + "/getMe", w(tgTok, KindTelegramBotToken)},
		{"telegram-like time", "at 12:30:45 the AA meeting", nil},

		// Payments, messaging, models.
		{"twilio api key", "TWILIO_API_KEY=SK0123456789abcdef0123456789abcdef", w("SK0123456789abcdef0123456789abcdef", KindTwilioKey)},
		{"twilio auth token", "TWILIO_AUTH_TOKEN=9f8e7d6c5b4a39281706f5e4d3c2b1a0", w("9f8e7d6c5b4a39281706f5e4d3c2b1a0", KindTwilioKey)},
		{"twilio account sid is public", "TWILIO_ACCOUNT_SID=AC9f8e7d6c5b4a39281706f5e4d3c2b1a0", nil},
		{"stripe live", "Stripe::API.key = 'sk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh'", w("sk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", KindStripeKey)},
		{"stripe restricted", "rk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", w("rk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", KindStripeKey)},
		{"stripe test", "sk_test_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", w("sk_test_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", KindStripeKey)},
		{"stripe docs test key", "curl -u sk_test_4eC39HqLyjWDarjtT1zdp7dc: https://api.stripe.com/v1/charges", nil},
		{"stripe publishable", "pk_live_51Hx9Kq2Lm7Pq4Rt7Vw1Yz6Bc3Df8Gh", nil},
		{"openai", "OPENAI_API_KEY=" + openAI, w(openAI, KindOpenAIKey)},
		{"openai legacy", "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", w("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", KindOpenAIKey)},
		{"anthropic", "ANTHROPIC_API_KEY=" + anthKey, w(anthKey, KindAnthropicKey)},
		{"sk- in words", "task-runner-for-the-disk-cleanup-service is fine; see sk-learn-docs-and-examples-here", nil},

		// JWT and keys.
		{"jwt", "Cookie: x=1\nid_token=" + jwt, w(jwt, KindJWT)},
		{"jwt without alg is not a jwt", jwtFor(`{"typ":"JWT","kid":"k1"}`), nil},
		{"jwt.io example", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", nil},
		{"pem rsa", "key:\n" + rsa + "\ndone", w(rsa, KindPrivateKey)},
		{"pem openssh", fakePEM("OPENSSH PRIVATE KEY"), w(fakePEM("OPENSSH PRIVATE KEY"), KindPrivateKey)},
		{"pem encrypted", fakePEM("ENCRYPTED PRIVATE KEY"), w(fakePEM("ENCRYPTED PRIVATE KEY"), KindPrivateKey)},
		{"pem truncated", "log:\n" + rsa[:300], w(rsa[:300], KindPrivateKey)},
		{"pem certificate", fakePEM("CERTIFICATE"), nil},
		{"pem public key", fakePEM("PUBLIC KEY"), nil},

		// URL passwords, headers.
		{"url password", "postgres://app:s3cretP4ss@db.internal:5432/app", w("s3cretP4ss", KindURLPassword)},
		{"url password with @", "redis://default:p@ss:w0rd!@cache:6379", w("p@ss:w0rd!", KindURLPassword)},
		{"url user only", "https://user@example.com/path", nil},
		{"url placeholder password", "postgres://user:password@localhost/db and mysql://root:${DB_PASS}@db/x", nil},
		{"mysql dsn", "app:Tq7vLp2x9K@tcp(mysql:3306)/shop", w("Tq7vLp2x9K", KindURLPassword)},
		{"bearer header", "curl -H 'Authorization: Bearer abcDEF123456ghiJKL789' https://x", w("abcDEF123456ghiJKL789", KindAuthorizationHeader)},
		{"basic header", "Authorization: Basic c3ZjOmh1bnRlcjIyMjI=", w("c3ZjOmh1bnRlcjIyMjI=", KindAuthorizationHeader)},
		{"token header", `{"Authorization": "token 7f3k9Lm2Qp4Rt7Vw1Yz6Bc3Df8"}`, w("7f3k9Lm2Qp4Rt7Vw1Yz6Bc3Df8", KindAuthorizationHeader)},
		{"bearer reference", `curl -H "Authorization: Bearer $ACCESS_TOKEN" -H "Authorization: Bearer ${TOKEN}" x`, nil},
		{"authorization prose", "Authorization: required for every endpoint", nil},
		{"cookie", "Set-Cookie: sessionid=Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2; Path=/; HttpOnly", w("sessionid=Zq9Xw8Vu7Ts6Rq5Po4Nm3Lk2; Path=/; HttpOnly", KindAuthorizationHeader)},

		// Assignments.
		{"env", "DB_PASSWORD=Wq8zL2pVx9mK\n", w("Wq8zL2pVx9mK", KindSecretAssignment)},
		{"env weak password", "PGPASSWORD=hunter22 psql -h db", w("hunter22", KindSecretAssignment)},
		{"export quoted with space", `export DB_PASSWORD="two words 9x"`, w("two words 9x", KindSecretAssignment)},
		{"yaml", "auth:\n  password: Qp4Rt7Vw1Y\n", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"json", `{"user": "bob", "password": "Qp4Rt7Vw1Y!", "max_tokens": 4096}`, w("Qp4Rt7Vw1Y!", KindSecretAssignment)},
		{"escaped json", `args="{\"api_key\":\"Qp4Rt7Vw1Yz6Bc3D\"}"`, w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"go", `cfg := Config{ClientSecret: "Qp4Rt7Vw1Yz6Bc3D"}`, w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"python", `API_KEY = 'Qp4Rt7Vw1Yz6Bc3D'`, w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"cli flag", "vault login --token Qp4Rt7Vw1Yz6Bc3D", w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"cli flag equals", "app --client-secret=Qp4Rt7Vw1Yz6Bc3D --verbose", w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"query token", "GET /export?access_token=Qp4Rt7Vw1Yz6Bc3D&format=csv", w("Qp4Rt7Vw1Yz6Bc3D", KindSecretAssignment)},
		{"k8s env", "- name: DB_PASSWORD\n  value: \"Qp4Rt7Vw1Y\"\n", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"xml", "<password>Qp4Rt7Vw1Y</password>", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"setter", `conn.setPassword("Qp4Rt7Vw1Y");`, w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"mysql -p", "mysql -u root -pQp4Rt7Vw1Y shop", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"curl -u", "curl -u admin:Qp4Rt7Vw1Y https://x", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"sql", "ALTER USER app WITH PASSWORD 'Qp4Rt7Vw1Y';", w("Qp4Rt7Vw1Y", KindSecretAssignment)},
		{"placeholders", "API_KEY=YOUR_API_KEY\nSMTP_PASSWORD=changeme\nTOKEN=xxx\nSECRET=<token>\nX=${TOKEN}\nP=$SECRET_VAR\nEMPTY_TOKEN=\nT='' \n", nil},
		{"references in code", "password = os.environ[\"DB_PASSWORD\"]\ntoken := cfg.Token\nlogin(user, password=password)\n", nil},
		{"names about secrets", "token_url: https://x/token\nsecret_name: db\npassword_min_length: 12\nmax_tokens: 4096\napi_key_id: 42\ntoken_type: Bearer\n", nil},
		{"type annotations", "password: str\ntoken: string;\nsecret: Option<String>,\n", nil},
		{"k8s refs", "- name: API_KEY\n  valueFrom:\n    secretKeyRef:\n      name: app\n      key: api-key\n", nil},
		{"password stdin flag", "docker login -u ci --password-stdin < /run/secrets/x", nil},

		// High entropy, encodings.
		{"random value after name", "the signing key is Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0", w("Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0", KindHighEntropy)},
		{"random value after weak name", `{"key": "Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0Mn2"}`, w("Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0Mn2", KindHighEntropy)},
		{"prose token", "I rotated it; the new token is 8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c", w("8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c", KindHighEntropy)},
		{"base64 token", "echo " + b64gh + " | base64 -d", w(b64gh, KindEncodedSecret)},
		{"url-encoded password", "next=" + url.QueryEscape("https://admin:pAsSw0rd9x@host/x"), w("pAsSw0rd9x", KindEncodedSecret)},
		{"ony device token", "ony_dev_" + onyBody, w("ony_dev_"+onyBody, KindHighEntropy)},

		// Look-alikes.
		{"uuid", "request_id=6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f key=6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f", nil},
		{"git sha", "commit 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a fix token refresh", nil},
		{"sha256 digest", "image: app@sha256:4f7c1d9e2b8a6f3c5e0d1b7a9c8e2f4d6b3a1c5e7f9d0b2a4c6e8f1a3b5d7c9e token ok", nil},
		{"key digest", "cache key: sha256:4f7c1d9e2b8a6f3c5e0d1b7a9c8e2f4d6b3a1c5e7f9d0b2a4c6e8f1a3b5d7c9e", nil},
		{"ssh public key", "public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk3mQ9xV2bL7pZ4rW8nY1cJ6dT5fS0gA3eK7uI9oP2w ci@acme", nil},
		{"path after key", "key file: /home/ci/.ssh/id_ed25519_deploy_2024_rotated", nil},
		{"words after token", "token: expired-session-please-login-again", nil},
		{"prose", "Reset your password from the settings page; tokens expire after 15 minutes.", nil},
		{"masked", "password: ********\ntoken: [REDACTED]\n", nil},
	}
}

func TestFind(t *testing.T) {
	r := Default()
	for _, tc := range findCases() {
		t.Run(tc.name, func(t *testing.T) {
			fs := r.Find(testKey, tc.in)
			checkFindings(t, tc.in, fs, tc.want)
		})
	}
}

func checkFindings(t *testing.T, in string, fs []Finding, want []want) {
	t.Helper()
	var spans []span
	for _, wnt := range want {
		i := strings.Index(in, wnt.secret)
		if i < 0 {
			t.Fatalf("bad case: %q not in input", wnt.secret)
		}
		sp := span{i, i + len(wnt.secret)}
		spans = append(spans, sp)
		f, ok := covering(fs, sp)
		if !ok {
			t.Errorf("%q not covered; findings %s", wnt.secret, describe(in, fs))
			continue
		}
		if f.Kind != wnt.kind {
			t.Errorf("%q found as %s, want %s", wnt.secret, f.Kind, wnt.kind)
		}
	}
	for _, f := range fs {
		hit := false
		for _, sp := range spans {
			hit = hit || f.Start < sp.end && sp.start < f.End
		}
		if !hit {
			t.Errorf("unexpected finding %s %q", f.Kind, in[f.Start:f.End])
		}
	}
	for i := 1; i < len(fs); i++ {
		if fs[i].Start < fs[i-1].End {
			t.Errorf("findings overlap or are unsorted: %v", fs)
		}
	}
}

func describe(in string, fs []Finding) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s %q", f.Kind, in[f.Start:f.End]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// The prefilter only saves time: with every keyword treated as present, the answers match.
func TestKeywordsMatchPatterns(t *testing.T) {
	r := Default()
	for _, d := range r.dets {
		for _, k := range d.keywords {
			if k != strings.ToLower(k) || k == "" {
				t.Errorf("%s: keyword %q must be non-empty lower case", d.kind, k)
			}
		}
	}
}

func TestRedactKeepsSurroundingText(t *testing.T) {
	in := "before export GITHUB_TOKEN=" + ghTok + " after\nand postgres://app:s3cretP4ss@db/x too"
	out, fs := Default().Redact(testKey, in)
	if len(fs) != 2 {
		t.Fatalf("findings %v", fs)
	}
	wantOut := "before export GITHUB_TOKEN=" + Marker(KindGitHubToken, Fingerprint(testKey, ghTok)) +
		" after\nand postgres://app:" + Marker(KindURLPassword, Fingerprint(testKey, "s3cretP4ss")) + "@db/x too"
	if out != wantOut {
		t.Errorf("got  %q\nwant %q", out, wantOut)
	}
}

func TestRedactEveryOccurrence(t *testing.T) {
	in := "DB_PASSWORD=Wq8zL2pVx9mK\nlater the log echoed Wq8zL2pVx9mK back"
	out, fs := Default().Redact(testKey, in)
	if strings.Contains(out, "Wq8zL2pVx9mK") || len(fs) != 2 || fs[0].Fingerprint != fs[1].Fingerprint {
		t.Errorf("got %q %v", out, fs)
	}
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint([]byte("org-a"), ghTok)
	if len(a) != 12 || !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(a) {
		t.Fatalf("fingerprint %q", a)
	}
	if Fingerprint([]byte("org-a"), ghTok) != a {
		t.Error("not stable")
	}
	if Fingerprint([]byte("org-b"), ghTok) == a {
		t.Error("same for two keys")
	}
	if Fingerprint([]byte("org-a"), ghTok+"x") == a {
		t.Error("same for two secrets")
	}
	if strings.Contains(a, ghTok[:6]) {
		t.Error("fingerprint shows the secret")
	}
	_, fs := Default().Redact([]byte("org-a"), "t="+ghTok)
	if len(fs) != 1 || fs[0].Fingerprint != a {
		t.Errorf("finding fingerprint %v, want %s", fs, a)
	}
}

func TestRedactIdempotent(t *testing.T) {
	r := Default()
	for _, tc := range findCases() {
		out, _ := r.Redact(testKey, tc.in)
		if again := r.Find(testKey, out); len(again) != 0 {
			t.Errorf("%s: redacted output still has findings: %s in %q", tc.name, describe(out, again), out)
		}
	}
}

func TestCustomRules(t *testing.T) {
	r, err := New(Options{Custom: []Rule{
		{Name: "acme-internal", Pattern: `acme_[a-z0-9]{16}`, Keywords: []string{"ACME_"}},
		{Name: "employee_pin", Pattern: `(?i)\bpin[:=]\s*([0-9]{4,8})\b`, Group: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := "token acme_0123456789abcdef and pin: 4821, with " + ghTok
	checkFindings(t, in, r.Find(testKey, in), []want{
		{"acme_0123456789abcdef", "custom:acme-internal"},
		{"4821", "custom:employee_pin"},
		{ghTok, KindGitHubToken},
	})
	out, _ := r.Redact(testKey, in)
	if !strings.Contains(out, "[REDACTED:custom:acme-internal:") {
		t.Errorf("marker missing: %q", out)
	}
	if again := r.Find(testKey, out); len(again) != 0 {
		t.Errorf("not idempotent: %v", again)
	}
}

func TestNewReportsEveryBadRule(t *testing.T) {
	_, err := New(Options{MinEntropy: -1, Custom: []Rule{
		{Name: "ok", Pattern: `x[0-9]+`},
		{Name: "", Pattern: `y`},
		{Name: "badre", Pattern: `(`},
		{Name: "empty", Pattern: `a*`},
		{Name: "group", Pattern: `a(b)`, Group: 2},
		{Name: "kw", Pattern: `a`, Keywords: []string{"", "ключ", "a\nb"}},
		{Name: "ok", Pattern: `z`},
		{Name: "bad]name", Pattern: `q`},
	}})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"MinEntropy", `rule 1 ""`, `rule 2 "badre"`, "bad pattern", "matches the empty string",
		"group 2 out of range", "empty keyword", "not ASCII", "line break", `rule 6 "ok": duplicate name`, `rule 7 "bad]name"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, `rule 0 "ok"`) {
		t.Errorf("good rule reported:\n%s", msg)
	}
}

func TestMinEntropyOption(t *testing.T) {
	in := `{"key": "Qp4Rt7Vw1Yz6Bc3Df8Gh5Jk0Mn2"}`
	strict, err := New(Options{MinEntropy: 7.9})
	if err != nil {
		t.Fatal(err)
	}
	if fs := strict.Find(testKey, in); len(fs) != 0 {
		t.Errorf("MinEntropy 7.9 still finds %v", fs)
	}
	if fs := Default().Find(testKey, in); len(fs) != 1 {
		t.Errorf("default finds %v", fs)
	}
}

func TestKinds(t *testing.T) {
	known := map[string]bool{}
	for _, k := range Kinds() {
		known[k] = true
	}
	for _, d := range Default().dets {
		if !known[d.kind] {
			t.Errorf("detector kind %q not in Kinds()", d.kind)
		}
	}
}

func TestNilKeyAndEmptyText(t *testing.T) {
	r := Default()
	if fs := r.Find(nil, ""); fs != nil {
		t.Errorf("empty text: %v", fs)
	}
	out, fs := r.Redact(nil, "t="+ghTok)
	if len(fs) != 1 || strings.Contains(out, ghTok) {
		t.Errorf("nil key: %q %v", out, fs)
	}
}

func TestErrorsAreDistinct(t *testing.T) {
	if errors.Is(ErrBlocked, ErrInvalidJSON) {
		t.Error("errors alias")
	}
}
