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

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// fakes records what the console asked of the seams the other parts of issue 13 fill.
type fakes struct {
	mu       sync.Mutex
	calls    []string
	session  string // what TOTP login and invite accept sign in as
	settings console.OrgSettings
}

func (f *fakes) note(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }
func (f *fakes) called(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c == s {
			return true
		}
	}
	return false
}

func (f *fakes) StepUpRequired(_ context.Context, _, risk string) (bool, error) { return true, nil }

func (f *fakes) Challenge(err error) (string, bool) {
	p, ok := problem.As(err)
	return "chal-1", ok && p.Code == "invalid_credentials" // stands in for totp_required
}
func (f *fakes) Finish(_ context.Context, ch, code, _, _ string) (string, time.Time, error) {
	if ch != "chal-1" || code != "123456" {
		return "", time.Time{}, problem.New(problem.Unauthorized, "invalid_totp", "that code is not valid")
	}
	return f.session, time.Now().Add(time.Hour), nil
}

func (f *fakes) Members(context.Context, string) ([]console.Member, error) {
	return []console.Member{{ID: "u1", Email: "ana@acme.test", Name: "Ana", Role: store.RoleMember, Active: true, Contacts: []string{"sms +1•••••••4821"}}}, nil
}
func (f *fakes) Invite(_ context.Context, _, _, email string, role store.Role) (console.Invitation, error) {
	f.note("invite " + email + " " + string(role))
	return console.Invitation{Link: "http://x/console/invite/onyi_abc", ExpiresAt: time.Now().Add(time.Hour)}, nil
}
func (f *fakes) SetRole(_ context.Context, _, _, id string, role store.Role) error {
	f.note("role " + id + " " + string(role))
	return nil
}
func (f *fakes) Deactivate(_ context.Context, _, _, id string) error { f.note("off " + id); return nil }
func (f *fakes) Reactivate(_ context.Context, _, _, id string) error { f.note("on " + id); return nil }

func (f *fakes) Settings(context.Context, string) (console.OrgSettings, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.settings, nil
}
func (f *fakes) UpdateSettings(_ context.Context, _, _ string, s console.OrgSettings) error {
	f.mu.Lock()
	f.settings = s
	f.mu.Unlock()
	return nil
}

func (f *fakes) Enrolled(context.Context, string, string) (bool, error) { return false, nil }
func (f *fakes) Begin(context.Context, string, string, string) (console.Enrollment, error) {
	return console.Enrollment{Secret: "JBSWY3DPEHPK3PXP", QRPNG: []byte("\x89PNG")}, nil
}
func (f *fakes) Confirm(_ context.Context, _, _, code string) error {
	f.note("confirm " + code)
	return nil
}
func (f *fakes) Disable(context.Context, string, string, string) error { return nil }

func (f *fakes) List(_ context.Context, _, _, current string) ([]console.SessionInfo, error) {
	return []console.SessionInfo{{PublicID: "s-mine", CreatedAt: time.Now(), Current: true}, {PublicID: "s-other", CreatedAt: time.Now(), UserAgent: "Firefox"}}, nil
}
func (f *fakes) Revoke(_ context.Context, _, _, id string) error { f.note("revoke " + id); return nil }

func (f *fakes) InviteInfo(_ context.Context, code string) (console.InviteInfo, error) {
	if code != "onyi_good" {
		return console.InviteInfo{}, problem.New(problem.NotFound, "invite_not_found", "no such invite")
	}
	return console.InviteInfo{OrgName: "Acme", Email: "new@acme.test", Role: store.RoleMember}, nil
}
func (f *fakes) Accept(_ context.Context, code, name, _, _, _ string) (string, time.Time, error) {
	f.note("accept " + code + " " + name)
	return f.session, time.Now().Add(time.Hour), nil
}
func (f *fakes) ForgotPassword(_ context.Context, email string) error {
	f.note("forgot " + email)
	return nil
}
func (f *fakes) ResetWithCode(_ context.Context, code, _ string) error {
	f.note("reset " + code)
	return nil
}

// TestSeams runs a console with every optional seam filled by fakes, over the real services.
func TestSeams(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	f := &fakes{session: e.in.Session(t, e.in.OrgID, e.in.Member.ID)}
	a := e.in.App
	var decided []string
	var mu sync.Mutex
	c, err := console.New(console.Deps{Handoffs: a.Handoffs, Escalation: a.Escalation, Audit: a.Audit, Sessions: a.Sessions,
		Org: org.Service{Store: a.Store, Audit: a.Audit}, Store: a.Store, Keyring: a.Keyring,
		TOTPLogin: f, StepUp: f, Team: f, Settings: f, TOTP: f, SessionList: f, Invites: f, Recovery: f,
		Decide: func(ctx context.Context, ac handoff.Actor, id, opt, comment, channel, code string) (store.Handoff, error) {
			mu.Lock()
			decided = append(decided, opt+" "+code)
			mu.Unlock()
			if opt == "approve" && code == "" {
				return store.Handoff{}, problem.New(problem.Forbidden, "stepup_required", "approving this handoff needs a TOTP code")
			}
			return a.Handoffs.Decide(ctx, ac, id, opt, comment, channel)
		}}, console.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	as := func(who string) *browser { b := e.as(t, who); b.base = srv.URL; return b }
	member, admin, viewer := as("member"), as("admin"), as("viewer")

	// Step-up: the TOTP field is shown; approving without a code is refused with the service's words.
	h := create(t, e.in.Agent(t), client.CreateRequest{Action: "shell.exec", Title: "needs step-up"})
	page := member.get("/console/handoffs/" + h.ID)
	if !strings.Contains(page.body, `name="totp"`) {
		t.Fatal("no TOTP field on a step-up handoff")
	}
	if strings.Contains(viewer.get("/console/handoffs/"+h.ID).body, `name="totp"`) {
		t.Error("a viewer is asked for a code")
	}
	if r := member.post("/console/handoffs/"+h.ID+"/decide", url.Values{"option": {"approve"}}); r.status != 403 || !strings.Contains(r.body, "needs a TOTP code") {
		t.Fatalf("approve without code: %d", r.status)
	}
	if r := member.post("/console/handoffs/"+h.ID+"/decide", url.Values{"option": {"approve"}, "totp": {"123456"}}); r.status != 303 {
		t.Fatalf("approve with code: %d", r.status)
	}
	if len(decided) != 2 || decided[1] != "approve 123456" {
		t.Errorf("decide seam got %v", decided)
	}

	// TOTP sign-in step.
	anon := as("anon")
	tok := anon.publicForm("/console/login")
	r := anon.do("POST", "/console/login", url.Values{"email": {e.in.Admin.Email}, "password": {"not it"}, "csrf": {tok}}, nil)
	if r.status != 200 || !strings.Contains(r.body, `name="challenge" value="chal-1"`) {
		t.Fatalf("TOTP step: %d", r.status)
	}
	if r := anon.do("POST", "/console/login/totp", url.Values{"challenge": {"chal-1"}, "totp": {"000000"}, "csrf": {tok}}, nil); r.status != 401 || !strings.Contains(r.body, "not valid") {
		t.Fatalf("wrong code: %d", r.status)
	}
	r = anon.do("POST", "/console/login/totp", url.Values{"challenge": {"chal-1"}, "totp": {"123456"}, "csrf": {tok}, "next": {"/console/audit"}}, nil)
	if r.status != 303 || r.header.Get("Location") != "/console/audit" || !strings.Contains(r.header.Get("Set-Cookie"), f.session) {
		t.Fatalf("TOTP sign-in: %d %q", r.status, r.header.Get("Location"))
	}

	// Team: everyone sees members; only admins act.
	if p := viewer.get("/console/team"); !strings.Contains(p.body, "ana@acme.test") || strings.Contains(p.body, "/console/team/u1/role") {
		t.Error("viewer's team page")
	}
	if r := admin.post("/console/team/invite", url.Values{"email": {"bo@acme.test"}, "role": {"viewer"}}); r.status != 200 || !strings.Contains(r.body, "onyi_abc") {
		t.Fatalf("invite: %d", r.status)
	}
	for _, p := range []string{"/console/team/u1/role", "/console/team/u1/deactivate", "/console/team/u1/reactivate", "/console/team/invite"} {
		if r := member.post(p, url.Values{"role": {"admin"}, "email": {"x@acme.test"}}); r.status != 403 {
			t.Errorf("member %s: %d", p, r.status)
		}
	}
	admin.post("/console/team/u1/role", url.Values{"role": {"admin"}})
	admin.post("/console/team/u1/deactivate", nil)
	if !f.called("invite bo@acme.test viewer") || !f.called("role u1 admin") || !f.called("off u1") {
		t.Errorf("team calls %v", f.calls)
	}

	// Settings.
	if r := admin.post("/console/settings", url.Values{"stepup": {"medium", "critical"}, "retention": {"30"}}); r.status != 303 {
		t.Fatalf("settings: %d", r.status)
	}
	if s, _ := f.Settings(context.Background(), ""); strings.Join(s.StepUpRisks, ",") != "medium,critical" || s.PayloadRetentionDays != 30 {
		t.Errorf("settings %+v", s)
	}
	if r := admin.post("/console/settings", url.Values{"retention": {"-1"}}); r.status != 400 {
		t.Errorf("bad retention: %d", r.status)
	}

	// TOTP enrolment shows the QR image as a data: URL.
	if r := member.post("/console/profile/totp/begin", nil); !strings.Contains(r.body, `src="data:image/png;base64,`) || !strings.Contains(r.body, "JBSWY3DPEHPK3PXP") {
		t.Errorf("enrolment: %d", r.status)
	}
	member.post("/console/profile/totp/confirm", url.Values{"totp": {"654321"}})
	if !f.called("confirm 654321") {
		t.Error("confirm not called")
	}

	// Sessions.
	if p := member.get("/console/sessions"); !strings.Contains(p.body, "/console/sessions/s-other/revoke") || strings.Contains(p.body, "/console/sessions/s-mine/revoke") {
		t.Error("sessions page")
	}
	member.post("/console/sessions/s-other/revoke", nil)
	if !f.called("revoke s-other") {
		t.Error("revoke not called")
	}

	// Invite, forgot, reset.
	anon = as("anon")
	if p := anon.get("/console/invite/onyi_nope"); p.status != 404 {
		t.Errorf("unknown invite: %d", p.status)
	}
	tok = anon.publicForm("/console/invite/onyi_good")
	r = anon.do("POST", "/console/invite/onyi_good", url.Values{"name": {"Neo"}, "password": {"a long password"}, "csrf": {tok}}, nil)
	if r.status != 303 || !f.called("accept onyi_good Neo") {
		t.Fatalf("accept: %d", r.status)
	}
	tok = anon.publicForm("/console/forgot")
	if r := anon.do("POST", "/console/forgot", url.Values{"email": {"x@acme.test"}, "csrf": {tok}}, nil); r.status != 200 || !strings.Contains(r.body, "on its way") {
		t.Errorf("forgot: %d", r.status)
	}
	tok = anon.publicForm("/console/reset/onyr_x")
	if r := anon.do("POST", "/console/reset/onyr_x", url.Values{"password": {"another long one"}, "csrf": {tok}}, nil); r.status != 303 || !f.called("reset onyr_x") {
		t.Errorf("reset: %d", r.status)
	}
	if r := anon.do("POST", "/console/reset/onyr_x", url.Values{"password": {"another long one"}}, nil); r.status != 403 {
		t.Errorf("reset without token: %d", r.status)
	}
}

// chatFake is the profile's chat-linking seam: Slack unlinked (findable by email), Telegram linked.
type chatFake struct {
	fakes
	linked map[string]bool
}

func (f *chatFake) Profile(context.Context, string, string) (console.ProfileInfo, error) {
	return console.ProfileInfo{Name: "Mia", Email: "mia@acme.test"}, nil
}
func (f *chatFake) UpdateProfile(context.Context, string, string, console.ProfileInfo) error {
	return nil
}

func (f *chatFake) Accounts(context.Context, string, string) ([]console.ChatAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []console.ChatAccount{{Kind: "slack", Label: "Slack", Linked: f.linked["slack"], ByEmail: true},
		{Kind: "telegram", Label: "Telegram", Linked: f.linked["telegram"]}}, nil
}
func (f *chatFake) StartLink(_ context.Context, _, userID, kind string) (console.LinkStart, error) {
	f.note("start " + kind + " " + userID)
	if kind == "telegram" {
		return console.LinkStart{Code: "abcd-efgh-jkmn", Expires: time.Now().Add(10 * time.Minute), URL: "https://t.me/ony_bot?start=abcd-efgh-jkmn"}, nil
	}
	return console.LinkStart{Code: "abcd-efgh-jkmn", Expires: time.Now().Add(10 * time.Minute), Command: "/ony link abcd-efgh-jkmn"}, nil
}
func (f *chatFake) LinkByEmail(_ context.Context, _, _, kind string) error {
	f.note("email " + kind)
	return problem.New(problem.Invalid, "not_in_chat", "Slack has no member with your email")
}
func (f *chatFake) Unlink(_ context.Context, _, _, kind string) error {
	f.mu.Lock()
	f.linked[kind] = false
	f.mu.Unlock()
	f.note("unlink " + kind)
	return nil
}

// TestChatLinksSeam: the profile lists chat accounts with link, find-by-email and unlink; a started
// link shows its one-time code and how to use it; refusals come back readable; only POSTs with the
// CSRF token act.
func TestChatLinksSeam(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	f := &chatFake{linked: map[string]bool{"telegram": true}}
	a := e.in.App
	c, err := console.New(console.Deps{Handoffs: a.Handoffs, Escalation: a.Escalation, Audit: a.Audit, Sessions: a.Sessions,
		Org: org.Service{Store: a.Store, Audit: a.Audit}, Store: a.Store, Keyring: a.Keyring, Profile: f, ChatLinks: f}, console.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	member := e.as(t, "member")
	member.base = srv.URL

	p := member.get("/console/profile")
	for _, want := range []string{"Slack: not linked", "/console/profile/chat/slack/link", "Find me in Slack by my email", "Telegram: linked", "/console/profile/chat/telegram/unlink"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("profile lacks %q", want)
		}
	}
	if strings.Contains(p.body, "/console/profile/chat/telegram/email") {
		t.Error("Telegram offers a lookup by email it does not have")
	}
	r := member.post("/console/profile/chat/slack/link", nil)
	if r.status != 200 || !strings.Contains(r.body, "<code>/ony link abcd-efgh-jkmn</code>") || !f.called("start slack "+e.in.Member.ID) {
		t.Fatalf("slack link: %d", r.status)
	}
	if r := member.post("/console/profile/chat/telegram/link", nil); !strings.Contains(r.body, `href="https://t.me/ony_bot?start=abcd-efgh-jkmn"`) {
		t.Errorf("telegram deep link missing: %d", r.status)
	}
	if r := member.post("/console/profile/chat/slack/email", nil); r.status != 400 || !strings.Contains(r.body, "Slack has no member with your email") {
		t.Errorf("email lookup refusal: %d", r.status)
	}
	if r := member.post("/console/profile/chat/telegram/unlink", nil); r.status != 200 || !strings.Contains(r.body, "Telegram: not linked") {
		t.Errorf("unlink: %d", r.status)
	}
	if r := member.post("/console/profile/chat/slack/teleport", nil); r.status != 404 {
		t.Errorf("unknown op: %d", r.status)
	}
	if r := member.do("POST", "/console/profile/chat/slack/link", url.Values{}, nil); r.status != 403 {
		t.Errorf("link without the CSRF token: %d", r.status)
	}
}
