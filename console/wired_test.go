package console_test

// The console over the real services (issue 13, wire): the seams internal/app fills are exercised
// end to end through the pages, success and refusal alike.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"

	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/simulated"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/internal/testsmtp"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// startStepUp starts an instance with the production step-up policy (the org's settings) and a clock
// the test moves, mid-way through a TOTP step.
func startStepUp(t *testing.T, d string) (*env, *stepClock) {
	t.Helper()
	clk := &stepClock{t: time.Now().UTC().Truncate(30 * time.Second).Add(15 * time.Second)}
	return startEnvWith(t, testserver.Options{Dialect: d, Clock: clk.Now, StepUp: true}), clk
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := ptotp.GenerateCodeCustom(secret, at, ptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var secretRE = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)

// enrol turns TOTP on for b through the profile page and returns the secret.
func enrol(t *testing.T, b *browser, clk *stepClock) string {
	t.Helper()
	a := b.post("/console/profile/totp/begin", nil)
	m := secretRE.FindStringSubmatch(a.body)
	if a.status != 200 || m == nil || !strings.Contains(a.body, `src="data:image/png;base64,`) {
		t.Fatalf("begin: %d, secret shown %v\n%s", a.status, m != nil, a.body)
	}
	if a := b.post("/console/profile/totp/confirm", url.Values{"totp": {"000000"}}); a.status == 200 || !strings.Contains(a.body, "the code is wrong") {
		t.Fatalf("confirm with a wrong code: %d", a.status)
	}
	if a := b.post("/console/profile/totp/confirm", url.Values{"totp": {totpCode(t, m[1], clk.Now())}}); a.status != 200 || !strings.Contains(a.body, "TOTP is on") {
		t.Fatalf("confirm: %d", a.status)
	}
	if !strings.Contains(b.get("/console/profile").body, "/console/profile/totp/disable") {
		t.Fatal("the profile does not offer to turn TOTP off once on")
	}
	return m[1]
}

func sessionCookie(t *testing.T, a answer, secure bool) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == session.CookieName(secure) && c.Value != "" {
			return c
		}
	}
	return nil
}

var challengeRE = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// TestWiredCookie: the console's cookie and the API's are one, __Host- prefixed on https, SameSite=Lax.
func TestWiredCookie(t *testing.T) {
	t.Parallel()
	if console.SessionCookieName(true) != "__Host-ony_session" || console.SessionCookieName(false) != "ony_session" {
		t.Fatalf("names %q %q", console.SessionCookieName(true), console.SessionCookieName(false))
	}
	on := true
	e := startEnvWith(t, testserver.Options{Configure: func(c *config.Config) { c.Auth.SecureCookies = &on }})
	anon := e.as(t, "anon")
	if strings.Contains(anon.get("/console/login").body, "/console/sso/login") {
		t.Error("a Sign in with SSO button without oidc configured")
	}
	if r := anon.get("/console/sso/login"); r.status != 404 {
		t.Errorf("SSO route without oidc: %d", r.status)
	}
	tok := anon.publicForm("/console/login")
	a := anon.do("POST", "/console/login", url.Values{"email": {e.in.Admin.Email}, "password": {e.in.Password}, "csrf": {tok}}, nil)
	c := sessionCookie(t, a, true)
	if a.status != 303 || c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Fatalf("console login: %d, cookie %+v", a.status, c)
	}
	b := &browser{t: t, base: e.in.URL, cookie: c.Value, secure: true}
	if r := b.get("/v1/auth/me"); r.status != 200 || !strings.Contains(r.body, e.in.Admin.ID) {
		t.Fatalf("API with the console's __Host- cookie: %d", r.status)
	}
	// And the other way: the API's sign-in opens the console.
	req, _ := http.NewRequest("POST", e.in.URL+"/v1/auth/login", strings.NewReader(`{"email":"`+e.in.Member.Email+`","password":"`+e.in.Password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	c = sessionCookie(t, answer{res.StatusCode, res.Header, ""}, true)
	if res.StatusCode != 200 || c == nil || c.SameSite != http.SameSiteLaxMode {
		t.Fatalf("API login: %d, cookie %+v", res.StatusCode, c)
	}
	b = &browser{t: t, base: e.in.URL, cookie: c.Value, secure: true}
	if r := b.get("/console/inbox"); r.status != 200 {
		t.Fatalf("console with the API's cookie: %d", r.status)
	}
}

// TestWiredTOTP: enrolment on the profile page, two-step sign-in (wrong code, replayed code, then the
// next step's), and step-up on approvals from the org's settings.
func TestWiredTOTP(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); wiredTOTP(t, d) })
	}
}

func wiredTOTP(t *testing.T, d string) {
	e, clk := startStepUp(t, d)
	admin := e.as(t, "admin")
	secret := enrol(t, admin, clk)
	used := totpCode(t, secret, clk.Now()) // spent by Confirm

	anon := e.as(t, "anon")
	tok := anon.publicForm("/console/login")
	a := anon.do("POST", "/console/login", url.Values{"email": {e.in.Admin.Email}, "password": {e.in.Password}, "next": {"/console/audit"}, "csrf": {tok}}, nil)
	ch := challengeRE.FindStringSubmatch(a.body)
	if a.status != 200 || ch == nil || sessionCookie(t, a, false) != nil {
		t.Fatalf("password step: %d, challenge %v", a.status, ch != nil)
	}
	second := func(code string) answer {
		tok := csrfRE.FindStringSubmatch(a.body)
		if tok == nil {
			t.Fatal("no form token on the code page")
		}
		return anon.do("POST", "/console/login/totp", url.Values{"challenge": {ch[1]}, "totp": {code}, "next": {"/console/audit"}, "csrf": {tok[1]}}, nil)
	}
	for name, code := range map[string]string{"wrong": "000000", "replayed": used} {
		if r := second(code); r.status != 401 || sessionCookie(t, r, false) != nil || !strings.Contains(r.body, "the code is wrong or was used already") {
			t.Fatalf("%s code: %d", name, r.status)
		}
	}
	clk.Advance(30 * time.Second)
	r := second(totpCode(t, secret, clk.Now()))
	c := sessionCookie(t, r, false)
	if r.status != 303 || c == nil || r.header.Get("Location") != "/console/audit" {
		t.Fatalf("code step: %d %q", r.status, r.header.Get("Location"))
	}
	if (&browser{t: t, base: e.in.URL, cookie: c.Value}).get("/console/inbox").status != 200 {
		t.Fatal("the two-step session does not open the console")
	}
	if r := second(totpCode(t, secret, clk.Now())); r.status != 401 {
		t.Fatalf("the challenge was reusable: %d", r.status)
	}

	// Step-up: a high-risk approval needs a code; a denial does not.
	ag := e.in.Agent(t)
	risky := func() *client.Handoff {
		h := create(t, ag, client.CreateRequest{Action: "shell.exec", Title: "wipe",
			Payload: &client.Payload{Kind: "command", Content: "rm -rf /srv/data"}, Labels: map[string]string{"env": "prod"}})
		if h.Risk != "high" && h.Risk != "critical" {
			t.Fatalf("want a high-risk handoff, got %q", h.Risk)
		}
		return h
	}
	decide := func(b *browser, id, option, code string) answer {
		return b.post("/console/handoffs/"+id+"/decide", url.Values{"option": {option}, "totp": {code}})
	}
	h := risky()
	if p := admin.get("/console/handoffs/" + h.ID); !strings.Contains(p.body, `name="totp"`) {
		t.Error("the handoff page asks no code for a high-risk approval")
	}
	if p := e.as(t, "viewer").get("/console/handoffs/" + h.ID); strings.Contains(p.body, `name="totp"`) {
		t.Error("a viewer is asked for a code")
	}
	for _, x := range []struct {
		name, code string
		want       int
		msg        string
	}{
		{"no code", "", 403, "needs a code from your authenticator app"},
		{"wrong code", "000000", 403, "the code is wrong or was used already"},
		{"replayed code", totpCode(t, secret, clk.Now()), 403, "the code is wrong or was used already"},
	} {
		if a := decide(admin, h.ID, "approve", x.code); a.status != x.want || !strings.Contains(a.body, x.msg) {
			t.Errorf("%s: %d", x.name, a.status)
		}
	}
	if a := decide(e.as(t, "viewer"), h.ID, "approve", ""); a.status != 403 {
		t.Errorf("viewer: %d", a.status)
	}
	if a := decide(e.as(t, "other"), h.ID, "approve", ""); a.status != 404 {
		t.Errorf("other org: %d", a.status)
	}
	if got, _ := ag.Get(context.Background(), h.ID); got.Status != "pending" {
		t.Fatalf("after refusals: %s", got.Status)
	}
	clk.Advance(30 * time.Second)
	if a := decide(admin, h.ID, "approve", totpCode(t, secret, clk.Now())); a.status != 303 {
		t.Fatalf("approve with the code: %d", a.status)
	}
	if got, _ := ag.Get(context.Background(), h.ID); got.Status != "approved" {
		t.Fatalf("status %s", got.Status)
	}
	if a := decide(admin, risky().ID, "deny", ""); a.status != 303 {
		t.Errorf("deny without a code: %d", a.status)
	}

	// The policy is the org's: medium added, a medium approval needs a code; emptied, none does.
	medium := func() *client.Handoff {
		h := create(t, ag, client.CreateRequest{Action: "deploy", Title: "ship"})
		if h.Risk != "medium" {
			t.Fatalf("want a medium-risk handoff, got %q", h.Risk)
		}
		return h
	}
	if a := admin.post("/console/settings", url.Values{"stepup": {"medium", "high", "critical"}}); a.status != 303 {
		t.Fatalf("settings: %d %s", a.status, a.body)
	}
	if a := decide(admin, medium().ID, "approve", ""); a.status != 403 || !strings.Contains(a.body, "needs a code") {
		t.Errorf("medium with medium in the policy: %d", a.status)
	}
	if a := admin.post("/console/settings", url.Values{}); a.status != 303 {
		t.Fatalf("settings: %d", a.status)
	}
	if a := decide(admin, medium().ID, "approve", ""); a.status != 303 {
		t.Errorf("medium with an empty policy: %d", a.status)
	}
	if a := decide(admin, risky().ID, "approve", ""); a.status != 303 {
		t.Errorf("high with an empty policy: %d", a.status)
	}
	if p := admin.get("/console/handoffs/" + risky().ID); strings.Contains(p.body, `name="totp"`) {
		t.Error("an empty policy still asks for a code")
	}

	// Disabling needs a valid code; then sign-in is one step again.
	if a := admin.post("/console/profile/totp/disable", url.Values{"totp": {"000000"}}); a.status == 200 {
		t.Fatal("disabled with a wrong code")
	}
	clk.Advance(30 * time.Second)
	if a := admin.post("/console/profile/totp/disable", url.Values{"totp": {totpCode(t, secret, clk.Now())}}); a.status != 200 || !strings.Contains(a.body, "TOTP is off") {
		t.Fatalf("disable: %d", a.status)
	}
}

// TestWiredSessions: the person's sessions are listed and revocable; others' are the same 404 as
// unknown ones; using a session marks the person active at most once a minute.
func TestWiredSessions(t *testing.T) {
	t.Parallel()
	e, clk := startStepUp(t, "sqlite")
	b := e.as(t, "member")
	other := &browser{t: t, base: e.in.URL, cookie: e.in.Session(t, e.in.OrgID, e.in.Member.ID)}
	admin := e.as(t, "admin")
	lastActive := func() *time.Time {
		var u store.User
		err := e.in.App.Store.InOrg(context.Background(), e.in.OrgID, func(tx store.OrgTx) (err error) {
			u, err = tx.UserByID(context.Background(), e.in.Member.ID)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return u.LastActiveAt
	}
	revokeRE := regexp.MustCompile(`action="/console/sessions/([^/"]+)/revoke"`)
	page := b.get("/console/sessions")
	ids := revokeRE.FindAllStringSubmatch(page.body, -1)
	if page.status != 200 || len(ids) != 1 || !strings.Contains(page.body, "this session") {
		t.Fatalf("sessions page: %d, %d revocable\n%s", page.status, len(ids), page.body)
	}
	adminIDs := revokeRE.FindAllStringSubmatch(admin.get("/console/sessions").body, -1)
	if len(adminIDs) != 0 {
		t.Fatalf("the admin sees %d other sessions", len(adminIDs))
	}
	if a := admin.post("/console/sessions/"+ids[0][1]+"/revoke", nil); a.status != 404 {
		t.Errorf("revoking another person's session: %d", a.status)
	}
	if a := b.post("/console/sessions/nosuch/revoke", nil); a.status != 404 {
		t.Errorf("revoking an unknown session: %d", a.status)
	}
	if other.get("/console/inbox").status != 200 {
		t.Fatal("the other session died early")
	}
	if a := b.post("/console/sessions/"+ids[0][1]+"/revoke", nil); a.status != 303 {
		t.Fatalf("revoke: %d", a.status)
	}
	if other.get("/console/inbox").status != 303 {
		t.Fatal("the revoked session still works")
	}

	if lastActive() != nil {
		t.Fatal("active before a minute passed")
	}
	// The fixture's session was last seen at the wall clock; the instance's clock is within 15s of it.
	clk.Advance(2 * time.Minute)
	b.get("/console/inbox")
	first := lastActive()
	if first == nil || first.Sub(clk.Now()).Abs() > time.Second {
		t.Fatalf("last active %v, want %v", first, clk.Now())
	}
	clk.Advance(10 * time.Second)
	b.get("/console/inbox")
	if again := lastActive(); again == nil || !again.Equal(*first) {
		t.Fatalf("touched again within the minute: %v then %v", first, again)
	}
}

var inviteRE = regexp.MustCompile(`/console/invite/(ony_inv_[A-Za-z0-9_-]+)`)

// TestWiredTeam: members with role, masked phone and last active; invite (the link shown without
// mail), accept (signed in at once, with the invite's role), roles, deactivation that ends the
// session at once, reactivation; and the refusals.
func TestWiredTeam(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); wiredTeam(t, startEnvOn(t, d)) })
	}
}

func wiredTeam(t *testing.T, e *env) {
	ctx := context.Background()
	now := time.Now()
	err := e.in.App.Store.InOrg(ctx, e.in.OrgID, func(tx store.OrgTx) error {
		if err := tx.SetContact(ctx, store.Contact{UserID: e.in.Member.ID, Kind: "phone", Address: "+14155554821", VerifiedAt: &now, CreatedAt: now}); err != nil {
			return err
		}
		return tx.SetContact(ctx, store.Contact{UserID: e.in.Member.ID, Kind: "slack", Address: "U012AB3CD", CreatedAt: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, member, viewer := e.as(t, "admin"), e.as(t, "member"), e.as(t, "viewer")
	page := viewer.get("/console/team")
	for _, want := range []string{e.in.Member.Email, "phone &#43;" + voice.MaskPhone("+14155554821")[1:], "slack U012AB3CD (unverified)", "viewer"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("team page lacks %q\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "4155554821") || strings.Contains(page.body, "/console/team/invite") {
		t.Error("the team page shows a full phone number, or a viewer the invite form")
	}

	// Invites: admins only; without mail the link is shown to copy.
	if a := member.post("/console/team/invite", url.Values{"email": {"new@acme.test"}, "role": {"viewer"}}); a.status != 403 {
		t.Errorf("member invites: %d", a.status)
	}
	if a := admin.post("/console/team/invite", url.Values{"email": {"not an email"}}); a.status != 400 || !strings.Contains(a.body, "is not an email address") {
		t.Errorf("bad email: %d", a.status)
	}
	a := admin.post("/console/team/invite", url.Values{"email": {"new@acme.test"}, "role": {"viewer"}})
	m := inviteRE.FindStringSubmatch(a.body)
	if a.status != 200 || m == nil || !strings.Contains(a.body, "Send this link") {
		t.Fatalf("invite: %d\n%s", a.status, a.body)
	}
	anon := e.as(t, "anon")
	if p := anon.get("/console/invite/" + m[1]); p.status != 200 || !strings.Contains(p.body, "new@acme.test") || !strings.Contains(p.body, "Acme") {
		t.Fatalf("invite page: %d", p.status)
	}
	accept := func(pw string) answer {
		tok := anon.publicForm("/console/invite/" + m[1])
		return anon.do("POST", "/console/invite/"+m[1], url.Values{"name": {"Nia New"}, "password": {pw}, "csrf": {tok}}, nil)
	}
	if r := accept("short"); r.status != 400 || sessionCookie(t, r, false) != nil {
		t.Errorf("weak password: %d", r.status)
	}
	r := accept("a long enough passphrase")
	c := sessionCookie(t, r, false)
	if r.status != 303 || c == nil {
		t.Fatalf("accept: %d", r.status)
	}
	nia := &browser{t: t, base: e.in.URL, cookie: c.Value}
	if me := nia.get("/v1/auth/me"); me.status != 200 || !strings.Contains(me.body, `"viewer"`) {
		t.Fatalf("the new member: %d %s", me.status, me.body)
	}
	if p := anon.get("/console/invite/" + m[1]); p.status != 404 {
		t.Errorf("a used invite: %d", p.status)
	}
	if p := anon.get("/console/invite/ony_inv_nosuch"); p.status != 404 {
		t.Errorf("an unknown invite: %d", p.status)
	}
	if !strings.Contains(admin.get("/console/team").body, "Nia New") {
		t.Error("the new member is not on the team page")
	}

	// Roles and deactivation: admins only; the other org's people are not found; a changed or
	// deactivated person's session ends at once.
	if a := member.post("/console/team/"+e.in.Viewer.ID+"/deactivate", nil); a.status != 403 {
		t.Errorf("member deactivates: %d", a.status)
	}
	if a := admin.post("/console/team/"+e.otherUser+"/deactivate", nil); a.status != 404 {
		t.Errorf("other org's person: %d", a.status)
	}
	if a := admin.post("/console/team/"+e.in.Admin.ID+"/deactivate", nil); a.status < 400 || a.status == 404 {
		t.Errorf("deactivating oneself: %d", a.status)
	}
	if a := admin.post("/console/team/"+e.in.Viewer.ID+"/deactivate", nil); a.status != 303 {
		t.Fatalf("deactivate: %d %s", a.status, a.body)
	}
	if viewer.get("/console/inbox").status != 303 {
		t.Error("a deactivated person's session still works")
	}
	if !strings.Contains(admin.get("/console/team").body, "deactivated") {
		t.Error("the team page does not show the deactivation")
	}
	if a := admin.post("/console/team/"+e.in.Viewer.ID+"/reactivate", nil); a.status != 303 {
		t.Fatalf("reactivate: %d", a.status)
	}
	if a := admin.post("/console/team/"+e.in.Member.ID+"/role", url.Values{"role": {"boss"}}); a.status != 400 {
		t.Errorf("bad role: %d", a.status)
	}
	if a := admin.post("/console/team/"+e.in.Member.ID+"/role", url.Values{"role": {"viewer"}}); a.status != 303 {
		t.Fatalf("set role: %d %s", a.status, a.body)
	}
	if member.get("/console/inbox").status != 303 {
		t.Error("a session outlived its person's change of role")
	}
	fresh := e.as(t, "member")
	if me := fresh.get("/v1/auth/me"); !strings.Contains(me.body, `"viewer"`) {
		t.Errorf("role not changed: %s", me.body)
	}
}

// TestWiredRecovery: a forgotten password is mailed (the same answer for an unknown email), and the
// mailed link sets a new one that signs in.
func TestWiredRecovery(t *testing.T) {
	t.Parallel()
	relay := testsmtp.Start(t, "", "")
	e := startEnvWith(t, testserver.Options{Configure: func(c *config.Config) {
		c.SMTP = config.SMTP{Host: relay.Host, Port: relay.Port, From: "Ony <ony@acme.test>", TLS: "none", Timeout: config.Duration(5 * time.Second)}
	}})
	anon := e.as(t, "anon")
	forgot := func(email string) answer {
		tok := anon.publicForm("/console/forgot")
		return anon.do("POST", "/console/forgot", url.Values{"email": {email}, "csrf": {tok}}, nil)
	}
	unknown, known := forgot("nobody@acme.test"), forgot(e.in.Member.Email)
	if unknown.status != 200 || known.status != 200 || unknown.body != known.body {
		t.Fatalf("forgot: %d / %d, same page %v", unknown.status, known.status, unknown.body == known.body)
	}
	got := relay.Messages()
	if len(got) != 1 || got[0].To != e.in.Member.Email {
		t.Fatalf("relay got %d mails", len(got))
	}
	_, text := got[0].Parse(t)
	m := regexp.MustCompile(regexp.QuoteMeta(e.in.URL) + `(/console/reset/ony_rst_[A-Za-z0-9_-]+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("reset mail: %q", text)
	}
	reset := func(pw string) answer {
		tok := anon.publicForm(m[1])
		return anon.do("POST", m[1], url.Values{"password": {pw}, "csrf": {tok}}, nil)
	}
	if r := reset("short"); r.status != 400 {
		t.Errorf("weak password: %d", r.status)
	}
	if r := reset("the second long passphrase"); r.status != 303 {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	if r := reset("the third long passphrase"); r.status != 404 {
		t.Errorf("a used reset link: %d", r.status)
	}
	tok := anon.publicForm("/console/login")
	if r := anon.do("POST", "/console/login", url.Values{"email": {e.in.Member.Email}, "password": {"the second long passphrase"}, "csrf": {tok}}, nil); r.status != 303 {
		t.Fatalf("login with the new password: %d", r.status)
	}
}

// TestWiredProfile: name, time zone, quiet hours and phone through org.Service; the phone is shown
// masked and stored unverified; chat accounts are listed read-only; mistakes come back readable.
func TestWiredProfile(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	ctx := context.Background()
	b := e.as(t, "member")
	user := func() store.User {
		var u store.User
		err := e.in.App.Store.InOrg(ctx, e.in.OrgID, func(tx store.OrgTx) (err error) { u, err = tx.UserByID(ctx, e.in.Member.ID); return err })
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if p := b.get("/console/profile"); !strings.Contains(p.body, e.in.Member.Email) || strings.Contains(p.body, "phone-current") {
		t.Fatalf("profile: %d", p.status)
	}
	save := func(f url.Values) answer {
		base := url.Values{"name": {"Mia M"}, "timezone": {"Europe/Lisbon"}, "quiet_start": {"22:00"}, "quiet_end": {"07:00"}}
		for k, v := range f {
			base[k] = v
		}
		return b.post("/console/profile", base)
	}
	for name, f := range map[string]url.Values{
		"bad zone":  {"timezone": {"Mars/Olympus"}},
		"bad phone": {"phone": {"12345"}},
		"half span": {"quiet_end": {""}},
	} {
		if a := save(f); a.status != 400 || !strings.Contains(a.body, `class="error"`) && !strings.Contains(a.body, "role=\"alert\"") {
			t.Errorf("%s: %d", name, a.status)
		}
	}
	if u := user(); u.Name != "Mia Member" || len(u.Contacts) != 0 {
		t.Fatalf("a refused save changed the person: %+v", u)
	}
	if a := save(url.Values{"phone": {"+14155554821"}}); a.status != 303 {
		t.Fatalf("save: %d %s", a.status, a.body)
	}
	u := user()
	ph, ok := u.Contact("phone")
	if u.Name != "Mia M" || u.Timezone != "Europe/Lisbon" || u.QuietHours != "22:00-07:00" || !ok || ph.Address != "+14155554821" || ph.VerifiedAt != nil {
		t.Fatalf("saved %+v, phone %+v", u, ph)
	}
	now := time.Now()
	if err := e.in.App.Store.InOrg(ctx, e.in.OrgID, func(tx store.OrgTx) error {
		return tx.SetContact(ctx, store.Contact{UserID: e.in.Member.ID, Kind: "slack", Address: "U012AB3CD", VerifiedAt: &now, CreatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	p := b.get("/console/profile")
	for _, want := range []string{`value="Mia M"`, `value="Europe/Lisbon"`, `value="22:00"`, `value="07:00"`, voice.MaskPhone("+14155554821")[1:], "not verified", "<li>slack U012AB3CD</li>"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	if strings.Contains(p.body, "4155554821") {
		t.Error("the profile shows the full phone number")
	}
	// Saving again without a number keeps it; removing it removes it.
	if a := save(nil); a.status != 303 {
		t.Fatalf("save: %d", a.status)
	}
	if _, ok := user().Contact("phone"); !ok {
		t.Fatal("an empty phone field removed the number")
	}
	if a := save(url.Values{"remove_phone": {"1"}, "quiet_start": {""}, "quiet_end": {""}}); a.status != 303 {
		t.Fatalf("remove: %d", a.status)
	}
	if u := user(); u.QuietHours != "" || len(u.Contacts) != 1 {
		t.Fatalf("after removal: %+v", u)
	}
	// Another person's profile is never reachable: the page is the caller's own.
	if p := e.as(t, "viewer").get("/console/profile"); strings.Contains(p.body, "Mia M") {
		t.Error("a viewer's profile shows another person")
	}
}

// TestWiredErase: the danger zone deletes the organization only for an admin with TOTP who typed its
// exact name and a fresh code; the final export is offered first; afterwards every session is gone.
func TestWiredErase(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); wiredErase(t, d) })
	}
}

func wiredErase(t *testing.T, d string) {
	e, clk := startStepUp(t, d)
	admin, member := e.as(t, "admin"), e.as(t, "member")
	erase := func(b *browser, name, code string) answer {
		return b.post("/console/settings/erase", url.Values{"name": {name}, "totp": {code}})
	}
	page := admin.get("/console/settings")
	if !strings.Contains(page.body, `id="danger-zone"`) || !strings.Contains(page.body, "Turn on two-factor") || strings.Contains(page.body, `action="/console/settings/erase"`) {
		t.Fatalf("danger zone without TOTP:\n%s", page.body)
	}
	if a := erase(admin, "Acme", "123456"); a.status != 403 || !strings.Contains(a.body, "turn on two-factor authentication") {
		t.Errorf("without TOTP: %d", a.status)
	}
	if a := erase(member, "Acme", "123456"); a.status != 403 {
		t.Errorf("member: %d", a.status)
	}
	secret := enrol(t, admin, clk)
	page = admin.get("/console/settings")
	if !strings.Contains(page.body, `action="/console/settings/erase"`) || !strings.Contains(page.body, `href="/console/audit/export"`) {
		t.Fatal("no erase form or export link with TOTP on")
	}
	if a := admin.get("/console/audit/export"); a.status != 200 {
		t.Fatalf("export: %d", a.status)
	}
	for _, x := range []struct{ name, typed, code, msg string }{
		{"wrong name", "acme", totpCode(t, secret, clk.Now().Add(30*time.Second)), "exact name"},
		{"wrong code", "Acme", "000000", "the code is wrong"},
		{"replayed code", "Acme", totpCode(t, secret, clk.Now()), "the code is wrong"},
	} {
		if a := erase(admin, x.typed, x.code); a.status < 400 || a.status == 404 || !strings.Contains(a.body, x.msg) {
			t.Errorf("%s: %d", x.name, a.status)
		}
	}
	if admin.get("/console/inbox").status != 200 {
		t.Fatal("the org is gone after refusals")
	}
	clk.Advance(30 * time.Second)
	a := erase(admin, "Acme", totpCode(t, secret, clk.Now()))
	cleared := false
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		cleared = cleared || (c.Name == session.CookieName(false) && c.MaxAge < 0)
	}
	if a.status != 200 || !strings.Contains(a.body, "was deleted") || !cleared {
		t.Fatalf("erase: %d, cookie cleared %v\n%s", a.status, cleared, a.body)
	}
	for who, b := range map[string]*browser{"admin": admin, "member": member} {
		if s := b.get("/console/inbox").status; s != 303 {
			t.Errorf("%s's session after erasure: %d", who, s)
		}
	}
	if _, err := e.in.Agent(t).List(context.Background(), "", 1); err == nil {
		t.Error("the org's device still works")
	}
	err := e.in.App.Store.InOrg(context.Background(), e.in.OrgID, func(tx store.OrgTx) error { _, err := tx.Org(context.Background()); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("org after erasure: %v", err)
	}
	// The other organization is untouched.
	if e.as(t, "other").get("/console/inbox").status != 200 {
		t.Error("erasing one org signed out another")
	}
}

// TestWiredProviders: Settings lists the escalation engine's providers with their state, real or
// simulated, and nothing else about them.
func TestWiredProviders(t *testing.T) {
	t.Parallel()
	e := startEnvWith(t, testserver.Options{Channels: []channel.Channel{simulated.New("sms", "twilio-sim", nil)}})
	page := e.as(t, "admin").get("/console/settings")
	for _, want := range []string{"<td>console</td><td>builtin</td><td>configured</td>", "<td>sms</td><td>twilio-sim</td><td>simulated</td>"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("settings lack %q\n%s", want, page.body)
		}
	}
}
