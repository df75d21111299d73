package server_test

// Two-step sign-in, sessions, TOTP enrolment and step-up for approvals (issue 13, totp helper).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"

	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/server"
)

// stepClock is a frozen clock moved by hand, so a test names the TOTP step each code is for.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func startTOTP(t *testing.T, d string) (*testserver.Instance, *stepClock) {
	t.Helper()
	now := time.Now().UTC().Truncate(30 * time.Second).Add(15 * time.Second) // mid-step
	clk := &stepClock{t: now}
	return testserver.Start(t, testserver.Options{Dialect: d, Clock: clk.Now, StepUp: true}).Seed(t), clk
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := ptotp.GenerateCodeCustom(secret, at, ptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolTOTP enrols the caller with the current step's code and returns the secret.
func enrolTOTP(t *testing.T, c *caller, clk *stepClock) string {
	t.Helper()
	r := c.do("POST", "/v1/auth/totp/begin", map[string]any{})
	if r.Status != http.StatusOK {
		t.Fatalf("begin: %d %s", r.Status, r.Body)
	}
	var b struct {
		Secret string `json:"secret"`
		URL    string `json:"otpauth_url"`
		QR     string `json:"qr_png_base64"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Secret == "" || !strings.HasPrefix(b.URL, "otpauth://totp/") || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("begin answer: %s", r.Body)
	}
	raw, err := base64.StdEncoding.DecodeString(b.QR)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
		t.Fatalf("QR is not a PNG: %v", err)
	}
	c.do("POST", "/v1/auth/totp/confirm", map[string]string{"totp": "000000"}).wantErr(t, http.StatusForbidden, "invalid_totp")
	if r := c.do("POST", "/v1/auth/totp/confirm", map[string]string{"totp": totpCode(t, b.Secret, clk.Now())}); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	return b.Secret
}

func sessionCookie(t *testing.T, r resp) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == server.SessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie: %d %s", r.Status, r.Body)
	return nil
}

func TestTOTPLoginAndSessions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in, clk := startTOTP(t, d)
		first := session(t, in, in.OrgID, in.Member.ID)
		member := cookieRaw(t, in.URL, first)
		secret := enrolTOTP(t, member, clk)
		login := anon(t, in.URL)
		creds := map[string]string{"email": in.Member.Email, "password": in.Password}

		// Password alone: totp_required with a challenge, and no cookie.
		r := login.do("POST", "/v1/auth/login", creds)
		e := r.wantErr(t, http.StatusUnauthorized, "totp_required")
		if len(r.Header.Values("Set-Cookie")) != 0 {
			t.Fatal("a cookie before the second factor")
		}
		var det struct {
			Challenge string `json:"challenge"`
		}
		if err := json.Unmarshal(e.Details, &det); err != nil || !strings.HasPrefix(det.Challenge, "ony_chl_") {
			t.Fatalf("challenge details: %s", e.Details)
		}
		// A wrong code; then the code already spent by confirm (replay).
		login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": det.Challenge, "totp": "000000"}).
			wantErr(t, http.StatusUnauthorized, "invalid_totp")
		login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": det.Challenge, "totp": totpCode(t, secret, clk.Now())}).
			wantErr(t, http.StatusUnauthorized, "invalid_totp")
		clk.Advance(30 * time.Second)
		code := totpCode(t, secret, clk.Now())
		r = login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": det.Challenge, "totp": code})
		if r.Status != http.StatusOK {
			t.Fatalf("login/totp: %d %s", r.Status, r.Body)
		}
		c := sessionCookie(t, r)
		if c.SameSite != http.SameSiteLaxMode || !c.HttpOnly || c.Path != "/" {
			t.Fatalf("cookie %+v", c)
		}
		// The challenge is spent; the code in one request with the password is replay-protected too.
		login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": det.Challenge, "totp": code}).
			wantErr(t, http.StatusUnauthorized, "invalid_challenge")
		login.do("POST", "/v1/auth/login", map[string]string{"email": in.Member.Email, "password": in.Password, "totp": code}).
			wantErr(t, http.StatusUnauthorized, "invalid_totp")
		clk.Advance(30 * time.Second)
		if r := login.do("POST", "/v1/auth/login", map[string]string{"email": in.Member.Email, "password": in.Password,
			"totp": totpCode(t, secret, clk.Now())}); r.Status != http.StatusOK {
			t.Fatalf("one-request login: %d %s", r.Status, r.Body)
		}

		// Sessions: listed with the current one marked; never the secret.
		mine := cookieRaw(t, in.URL, c.Value)
		r = mine.do("GET", "/v1/auth/sessions", nil)
		var list struct {
			Sessions []struct {
				ID      string `json:"id"`
				Current bool   `json:"current"`
			} `json:"sessions"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &list) != nil || len(list.Sessions) != 3 {
			t.Fatalf("sessions: %d %s", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "ony_ses_") {
			t.Fatal("a session secret in the list")
		}
		var other string
		for _, s := range list.Sessions {
			if !s.Current && other == "" {
				other = s.ID
			}
		}
		// Another person cannot end it: the same 404 as an unknown id.
		admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
		admin.do("DELETE", "/v1/auth/sessions/"+other, map[string]any{}).wantErr(t, http.StatusNotFound, "not_found")
		mine.do("DELETE", "/v1/auth/sessions/nope", map[string]any{}).wantErr(t, http.StatusNotFound, "not_found")
		if r := mine.do("DELETE", "/v1/auth/sessions/"+other, map[string]any{}); r.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		r = mine.do("GET", "/v1/auth/sessions", nil)
		if json.Unmarshal(r.Body, &list) != nil || len(list.Sessions) != 2 {
			t.Fatalf("after revoke: %s", r.Body)
		}

		// Throttling: five wrong codes, then even the right one is refused.
		r = login.do("POST", "/v1/auth/login", creds)
		e = r.wantErr(t, http.StatusUnauthorized, "totp_required")
		_ = json.Unmarshal(e.Details, &det)
		ch2 := det.Challenge
		for i := 0; i < 5; i++ {
			if i == 4 { // a challenge allows five attempts; the throttle is per person, across challenges
				e = login.do("POST", "/v1/auth/login", creds).wantErr(t, http.StatusUnauthorized, "totp_required")
				_ = json.Unmarshal(e.Details, &det)
				ch2 = det.Challenge
			}
			login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": ch2, "totp": "111111"}).
				wantErr(t, http.StatusUnauthorized, "invalid_totp")
		}
		clk.Advance(30 * time.Second)
		r = login.do("POST", "/v1/auth/login/totp", map[string]string{"challenge": ch2, "totp": totpCode(t, secret, clk.Now())})
		r.wantErr(t, http.StatusTooManyRequests, "rate_limited")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	})
}

func TestStepUpDecide(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in, clk := startTOTP(t, d)
		ag := in.Agent(t)
		memberSess := session(t, in, in.OrgID, in.Member.ID)
		member := cookieRaw(t, in.URL, memberSess)
		admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
		risky := func() string {
			r := bearer(t, in.URL, in.DeviceToken).do("POST", "/v1/handoffs", map[string]any{
				"action": "shell.exec", "title": "Wipe", "payload": map[string]any{"kind": "command", "content": "rm -rf /srv/data"},
				"labels": map[string]string{"env": "prod"}})
			h := r.handoff(t, http.StatusCreated)
			if h.Risk != "high" && h.Risk != "critical" {
				t.Fatalf("want a high-risk handoff, got %q", h.Risk)
			}
			return h.ID
		}
		decide := func(c *caller, id, option, code string) resp {
			return c.do("POST", "/v1/handoffs/"+id+"/decide", map[string]string{"option": option, "totp": code})
		}

		// Not enrolled: a high-risk approval is refused, a denial is not.
		h1 := risky()
		decide(admin, h1, "approve", "").wantErr(t, http.StatusForbidden, "stepup_required")
		decide(admin, h1, "approve", "123456").wantErr(t, http.StatusForbidden, "totp_not_enrolled")
		secret := enrolTOTP(t, member, clk)
		decide(member, h1, "approve", "").wantErr(t, http.StatusForbidden, "stepup_required")
		decide(member, h1, "approve", "000000").wantErr(t, http.StatusForbidden, "invalid_totp")
		// The code spent enrolling is refused (replay), then the next step's is accepted.
		decide(member, h1, "approve", totpCode(t, secret, clk.Now())).wantErr(t, http.StatusForbidden, "invalid_totp")
		clk.Advance(30 * time.Second)
		code := totpCode(t, secret, clk.Now())
		if h := decide(member, h1, "approve", code).handoff(t, http.StatusOK); h.Status != "approved" {
			t.Fatalf("status %q", h.Status)
		}
		h2 := risky()
		decide(member, h2, "approve", code).wantErr(t, http.StatusForbidden, "invalid_totp")
		if h := decide(member, h2, "deny", "").handoff(t, http.StatusOK); h.Status != "denied" {
			t.Fatalf("deny needs no step-up: %q", h.Status)
		}
		// A low-risk approval needs no code.
		low := mustCreate(t, ag, basicRequest("read a file"))
		if low.Risk == "low" || low.Risk == "medium" {
			if h := decide(member, low.ID, "approve", "").handoff(t, http.StatusOK); h.Status != "approved" {
				t.Fatalf("low-risk approve: %q", h.Status)
			}
		}
		// Disabling needs a valid code, and ends the person's other sessions.
		member.do("POST", "/v1/auth/totp/disable", map[string]string{"totp": "000000"}).wantErr(t, http.StatusForbidden, "invalid_totp")
		clk.Advance(30 * time.Second)
		if r := member.do("POST", "/v1/auth/totp/disable", map[string]string{"totp": totpCode(t, secret, clk.Now())}); r.Status != http.StatusOK {
			t.Fatalf("disable: %d %s", r.Status, r.Body)
		}
		h3 := risky()
		decide(member, h3, "approve", "123456").wantErr(t, http.StatusForbidden, "totp_not_enrolled")
		// The audit log records step-up outcomes and never a code.
		r := admin.do("GET", "/v1/audit/leaves?from=0&limit=100", nil)
		var leaves struct {
			Leaves []struct {
				Data []byte `json:"data"`
			} `json:"leaves"`
		}
		if err := json.Unmarshal(r.Body, &leaves); err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, l := range leaves.Leaves {
			all = append(all, string(l.Data))
		}
		body := strings.Join(all, "\n")
		if r.Status != http.StatusOK || !strings.Contains(body, "stepup.failed") || !strings.Contains(body, "stepup.passed") ||
			!strings.Contains(body, "member.totp_enrolled") || !strings.Contains(body, "member.totp_disabled") {
			t.Fatalf("audit leaves: %d %.2000s", r.Status, body)
		}
		if strings.Contains(body, code) || strings.Contains(body, secret) {
			t.Fatal("a code or secret in the audit log")
		}
	})
}
