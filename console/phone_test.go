package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
)

// phoneFake is the profile with an unverified (masked) number, and the verification seam: the code
// is 123456, and the third text in a row is refused as too many.
type phoneFake struct {
	mu       sync.Mutex
	verified bool
	sends    int
	calls    []string
}

func (f *phoneFake) Profile(context.Context, string, string) (console.ProfileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return console.ProfileInfo{Name: "Mia", Email: "mia@acme.test", Phone: "+1••••••0123", PhoneVerified: f.verified}, nil
}
func (f *phoneFake) UpdateProfile(context.Context, string, string, console.ProfileInfo) error {
	return nil
}

func (f *phoneFake) Send(_ context.Context, orgID, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "send "+orgID+" "+userID)
	if f.sends++; f.sends > 2 {
		p := problem.New(problem.RateLimited, "too_many_codes", "Ony sends at most 3 codes an hour; try again in 59 minutes")
		p.RetryAfter = 59 * time.Minute
		return p
	}
	return nil
}

func (f *phoneFake) Confirm(_ context.Context, orgID, userID, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "confirm "+orgID+" "+userID+" "+code)
	if code != "123456" {
		return problem.New(problem.Invalid, "invalid_code", "this code is not valid; send a new code")
	}
	f.verified = true
	return nil
}

func (f *phoneFake) called(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == s {
			return true
		}
	}
	return false
}

// phoneConsole serves a console with the fake profile and, when verify is set, the fake seam.
func phoneConsole(t *testing.T, e *env, f *phoneFake, verify bool) string {
	t.Helper()
	a := e.in.App
	d := console.Deps{Handoffs: a.Handoffs, Escalation: a.Escalation, Audit: a.Audit, Sessions: a.Sessions,
		Org: org.Service{Store: a.Store, Audit: a.Audit}, Store: a.Store, Keyring: a.Keyring, Profile: f}
	if verify {
		d.PhoneVerify = f
	}
	c, err := console.New(d, console.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPhoneVerifySeam: an unverified number offers "Send a code" and a code field; the seam is called
// for the signed-in person only; a wrong code and a throttled text come back readable with their
// status; once verified the form is gone; without the seam nothing is offered and the routes are 404;
// only POSTs with the CSRF token act.
func TestPhoneVerifySeam(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	f := &phoneFake{}
	member := e.as(t, "member")
	member.base = phoneConsole(t, e, f, true)
	who := e.in.OrgID + " " + e.in.Member.ID

	p := member.get("/console/profile")
	for _, want := range []string{`id="phone-verify"`, `action="/console/profile/phone/send"`, "Send a code",
		`action="/console/profile/phone/verify"`, `name="code"`, "••••••0123</code>; typing it here"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	r := member.post("/console/profile/phone/send", nil)
	if r.status != 200 || !strings.Contains(r.body, "Ony texted a 6-digit code") || !f.called("send "+who) {
		t.Fatalf("send: %d", r.status)
	}
	r = member.post("/console/profile/phone/verify", url.Values{"code": {"654321"}})
	if r.status != 400 || !strings.Contains(r.body, "this code is not valid; send a new code") || !strings.Contains(r.body, `id="phone-verify"`) {
		t.Errorf("wrong code: %d", r.status)
	}
	member.post("/console/profile/phone/send", nil)
	if r := member.post("/console/profile/phone/send", nil); r.status != 429 || !strings.Contains(r.body, "Ony sends at most 3 codes an hour") {
		t.Errorf("throttled send: %d", r.status)
	}
	if r := member.do("POST", "/console/profile/phone/verify", url.Values{"code": {"123456"}}, nil); r.status != 403 || f.called("confirm "+who+" 123456") {
		t.Errorf("verify without the CSRF token: %d", r.status)
	}
	r = member.post("/console/profile/phone/verify", url.Values{"code": {" 123456 "}})
	if r.status != 200 || !strings.Contains(r.body, "Your phone number is verified") || !f.called("confirm "+who+" 123456") {
		t.Fatalf("verify: %d", r.status)
	}
	if strings.Contains(r.body, `id="phone-verify"`) || strings.Contains(member.get("/console/profile").body, "/console/profile/phone/send") {
		t.Error("a verified number is still offered verification")
	}

	// Without the seam: nothing offered, nothing routed.
	g := &phoneFake{}
	plain := e.as(t, "member")
	plain.base = phoneConsole(t, e, g, false)
	if p := plain.get("/console/profile"); p.status != 200 || strings.Contains(p.body, "phone-verify") || !strings.Contains(p.body, "not verified") {
		t.Errorf("profile without verification: %d", p.status)
	}
	for _, path := range []string{"/console/profile/phone/send", "/console/profile/phone/verify"} {
		if r := plain.post(path, url.Values{"code": {"123456"}}); r.status != 404 {
			t.Errorf("%s without the seam: %d", path, r.status)
		}
	}
	if len(g.calls) != 0 {
		t.Errorf("seam called without being wired: %v", g.calls)
	}
}
