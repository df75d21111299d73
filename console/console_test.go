package console_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/console"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
)

// syncBuf collects the instance's log lines so a test can look for what must never be logged.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	in   *testserver.Instance
	logs *syncBuf
	// other is a person of a second organization on the same instance.
	otherOrg, otherUser string
}

func startEnv(t testing.TB) *env { t.Helper(); return startEnvOn(t, "sqlite") }

// startEnvOn starts an instance on dialect ("sqlite" or "postgres").
func startEnvOn(t testing.TB, dialect string) *env {
	t.Helper()
	return startEnvWith(t, testserver.Options{Dialect: dialect})
}

// startEnvWith starts an instance with o (its Logger is the env's).
func startEnvWith(t testing.TB, o testserver.Options) *env {
	t.Helper()
	logs := &syncBuf{}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	in := testserver.Start(t, o).Seed(t)
	e := &env{in: in, logs: logs, otherOrg: uuid.NewString(), otherUser: uuid.NewString()}
	ctx := context.Background()
	err := in.App.Store.InOrg(ctx, e.otherOrg, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: e.otherOrg, Name: "Other", MaxTimeout: time.Hour, CreatedAt: time.Now()}); err != nil {
			return err
		}
		return tx.CreateUser(ctx, store.User{ID: e.otherUser, Email: "o-" + e.otherUser[:8] + "@other.test", Name: "Otto Other",
			PasswordHash: "x", Role: store.RoleAdmin, Timezone: "UTC", Active: true, CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// browser is a person's browser without redirects followed, so tests see each answer.
type browser struct {
	t      testing.TB
	base   string
	cookie string
	secure bool           // the instance's public URL is https: the cookie is __Host- prefixed
	extra  []*http.Cookie // the pre-sign-in form cookie
}

func (e *env) as(t testing.TB, who string) *browser {
	b := &browser{t: t, base: e.in.URL}
	switch who {
	case "admin":
		b.cookie = e.in.Session(t, e.in.OrgID, e.in.Admin.ID)
	case "member":
		b.cookie = e.in.Session(t, e.in.OrgID, e.in.Member.ID)
	case "viewer":
		b.cookie = e.in.Session(t, e.in.OrgID, e.in.Viewer.ID)
	case "other":
		b.cookie = e.in.Session(t, e.otherOrg, e.otherUser)
	case "anon":
	default:
		t.Fatalf("who %q", who)
	}
	return b
}

var noRedirect = &http.Client{Transport: testhttp.Client.Transport, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: console.SessionCookieName(b.secure), Value: b.cookie})
	}
	for _, c := range b.extra {
		req.AddCookie(c)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(data)}
}

func (b *browser) get(path string) answer { b.t.Helper(); return b.do("GET", path, nil, nil) }

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the form token from a page the person can see.
func (b *browser) csrf() string {
	b.t.Helper()
	a := b.get("/console/profile")
	m := csrfRE.FindStringSubmatch(a.body)
	if m == nil {
		b.t.Fatalf("no csrf token on the profile page (%d)", a.status)
	}
	return m[1]
}

// post sends a form with the person's CSRF token.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf())
	return b.do("POST", path, form, nil)
}

// publicForm opens a pre-sign-in page, keeps its form cookie and returns the form's token.
func (b *browser) publicForm(path string) string {
	b.t.Helper()
	a := b.get(path)
	if cs := (&http.Response{Header: a.header}).Cookies(); len(cs) > 0 {
		b.extra = cs
	}
	m := csrfRE.FindStringSubmatch(a.body)
	if a.status != 200 || m == nil || len(b.extra) != 1 {
		b.t.Fatalf("%s: %d, token %v, cookies %d", path, a.status, m != nil, len(b.extra))
	}
	return m[1]
}

func checkHeaders(t *testing.T, what string, a answer) {
	t.Helper()
	if got := a.header.Get("Content-Security-Policy"); got != console.CSP {
		t.Errorf("%s: CSP = %q", what, got)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := a.header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if rp := a.header.Get("Referrer-Policy"); rp != "same-origin" && rp != "no-referrer" {
		t.Errorf("%s: Referrer-Policy = %q", what, rp)
	}
}

func create(t testing.TB, ag *client.Client, r client.CreateRequest) *client.Handoff {
	t.Helper()
	h, _, err := ag.Create(context.Background(), r, "")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const secretPayload = "rm -rf /srv/data && echo TOPSECRET-7f3a <script>alert(1)</script>"

func TestPagesByRole(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); pagesByRole(t, startEnvOn(t, d)) })
	}
}

func pagesByRole(t *testing.T, e *env) {
	h := create(t, e.in.Agent(t), client.CreateRequest{Action: "shell.exec", Title: "clean the data dir",
		Payload: &client.Payload{Kind: "command", Content: secretPayload}})
	const ok, login, forbidden, notFound = 200, 303, 403, 404
	pages := []struct {
		path string
		want map[string]int // by who; missing = 200
	}{
		{"/console/inbox", map[string]int{"anon": login}},
		{"/console/handoffs/" + h.ID, map[string]int{"anon": login, "other": notFound}},
		{"/console/handoffs/" + uuid.NewString(), map[string]int{"anon": login, "admin": notFound, "member": notFound, "viewer": notFound, "other": notFound}},
		{"/console/devices", map[string]int{"anon": login, "member": forbidden, "viewer": forbidden}},
		{"/console/ladders", map[string]int{"anon": login}},
		{"/console/ladders/nosuch", map[string]int{"anon": login, "member": notFound, "viewer": notFound}},
		{"/console/audit", map[string]int{"anon": login}},
		{"/console/audit/export", map[string]int{"anon": login, "member": forbidden, "viewer": forbidden}},
		{"/console/team", map[string]int{"anon": login}},
		{"/console/settings", map[string]int{"anon": login, "member": forbidden, "viewer": forbidden}},
		{"/console/profile", map[string]int{"anon": login}},
		{"/console/sessions", map[string]int{"anon": login}},
		{"/console/login", nil},
		{"/console/forgot", nil},
		{"/console/nope", map[string]int{"anon": notFound, "admin": notFound, "member": notFound, "viewer": notFound, "other": notFound}},
	}
	for _, who := range []string{"admin", "member", "viewer", "other", "anon"} {
		b := e.as(t, who)
		for _, p := range pages {
			want, found := p.want[who]
			if !found {
				want = ok
			}
			a := b.get(p.path)
			if a.status != want {
				t.Errorf("%s GET %s = %d, want %d", who, p.path, a.status, want)
			}
			checkHeaders(t, who+" "+p.path, a)
			if want == login {
				loc := a.header.Get("Location")
				if !strings.HasPrefix(loc, "/console/login?next=") {
					t.Errorf("%s GET %s: Location %q", who, p.path, loc)
				}
			}
			if strings.Contains(a.body, "TOPSECRET") && !strings.HasPrefix(p.path, "/console/handoffs/"+h.ID) {
				t.Errorf("%s GET %s shows the payload", who, p.path)
			}
		}
	}
	// The 404 for another organization's handoff is the 404 for an unknown one, byte for byte.
	other := e.as(t, "other")
	a, b := other.get("/console/handoffs/"+h.ID), other.get("/console/handoffs/"+uuid.NewString())
	if a.status != 404 || a.body != b.body {
		t.Errorf("other org's handoff: %d, body differs from unknown id: %v", a.status, a.body != b.body)
	}
}

func TestHandoffPageAndDecide(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) { t.Parallel(); handoffPageAndDecide(t, startEnvOn(t, d)) })
	}
}

func handoffPageAndDecide(t *testing.T, e *env) {
	ag := e.in.Agent(t)
	diff := "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-old <b>line</b>\n+new TOPSECRET-diff line\n context\n"
	h := create(t, ag, client.CreateRequest{Action: "code.apply", Title: "apply TOPSECRET-title patch",
		Payload: &client.Payload{Kind: "diff", Content: diff}, Labels: map[string]string{"env": "prod"}})
	member, viewer := e.as(t, "member"), e.as(t, "viewer")

	// The ladder's first rung reaches the console inboxes in a job: wait for it, so the notifications
	// are there to read.
	page := member.get("/console/handoffs/" + h.ID)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(page.body, "<td>rung 1</td>"); page = member.get("/console/handoffs/" + h.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("no notification listed after 30 s:\n%s", page.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if page.status != 200 {
		t.Fatalf("page %d", page.status)
	}
	for _, want := range []string{`class="ln add">&#43;new TOPSECRET-diff line`, `class="ln del">-old &lt;b&gt;line&lt;/b&gt;`, `class="ln hunk">@@`,
		`name="option" value="approve"`, `name="option" value="deny"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("page lacks %q\n%s", want, page.body)
		}
	}
	title := regexp.MustCompile(`<title>(.*)</title>`).FindStringSubmatch(page.body)
	if title == nil || strings.Contains(title[1], "TOPSECRET") {
		t.Errorf("title = %v", title)
	}
	for _, m := range regexp.MustCompile(`(?:href|action|src|data-[a-z]+)="([^"]*)"`).FindAllStringSubmatch(page.body, -1) {
		if strings.Contains(m[1], "TOPSECRET") {
			t.Errorf("a URL on the page carries the payload or title: %s", m[1])
		}
	}
	if strings.Contains(viewer.get("/console/handoffs/"+h.ID).body, `name="option"`) {
		t.Error("a viewer is offered decision buttons")
	}

	path := "/console/handoffs/" + h.ID + "/decide"
	form := func(tok string) url.Values {
		return url.Values{"option": {"approve"}, "comment": {"ok by me"}, "csrf": {tok}}
	}
	tok := member.csrf()
	refusals := []struct {
		name string
		b    *browser
		f    url.Values
		hdr  map[string]string
		want int
	}{
		{"no token", member, url.Values{"option": {"approve"}}, nil, 403},
		{"wrong token", member, form("AAAA" + tok[4:]), nil, 403},
		{"another person's token", member, form(viewer.csrf()), nil, 403},
		{"cross-site", member, form(tok), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"foreign origin", member, form(tok), map[string]string{"Origin": "https://evil.example"}, 403},
		{"viewer", viewer, form(viewer.csrf()), nil, 403},
		{"signed out", e.as(t, "anon"), form(tok), nil, 401},
		{"other org", e.as(t, "other"), nil, nil, 404},
	}
	for _, r := range refusals {
		f := r.f
		if f == nil {
			f = form(r.b.csrf())
		}
		a := r.b.do("POST", path, f, r.hdr)
		if a.status != r.want {
			t.Errorf("%s: %d, want %d", r.name, a.status, r.want)
		}
		checkHeaders(t, r.name, a)
	}
	if got, _ := ag.Get(context.Background(), h.ID); got.Status != "pending" {
		t.Fatalf("after refusals: %s", got.Status)
	}

	a := member.do("POST", path, form(tok), map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": e.in.URL})
	if a.status != 303 || a.header.Get("Location") != "/console/handoffs/"+h.ID {
		t.Fatalf("decide: %d %q", a.status, a.header.Get("Location"))
	}
	got, err := ag.Get(context.Background(), h.ID)
	if err != nil || got.Status != "approved" || got.Decision.Channel != "console" || got.Decision.Comment != "ok by me" {
		t.Fatalf("decided: %+v %v", got, err)
	}
	page = member.get("/console/handoffs/" + h.ID)
	// The notifications name people (the console inbox of each), and count rungs from 1.
	for _, want := range []string{"Mia Member", "console", "ok by me", "approved", "<td>rung 1</td>", "<td>Ada Admin</td>"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("decided page lacks %q", want)
		}
	}
	if strings.Contains(page.body, `name="option"`) {
		t.Error("decided page still offers buttons")
	}
	// A second decision is refused, naming the state, and changes nothing.
	if a := member.post(path, url.Values{"option": {"deny"}}); a.status != 409 {
		t.Errorf("second decision: %d", a.status)
	}
	if logs := e.logs.String(); strings.Contains(logs, "TOPSECRET") {
		t.Errorf("the payload or title reached the log:\n%s", logs)
	}
}

func TestInbox(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	ag := e.in.Agent(t)
	a := create(t, ag, client.CreateRequest{Action: "shell.exec", Title: "alpha task", Labels: map[string]string{"env": "prod"}})
	create(t, ag, client.CreateRequest{Action: "db.migrate", Title: "beta task", Labels: map[string]string{"env": "dev"}})
	b := e.as(t, "viewer")
	cases := []struct {
		query      string
		has, hasNo []string
	}{
		{"", []string{"alpha task", "beta task", "test agent"}, nil},
		{"?action=shell", []string{"alpha task"}, []string{"beta task"}},
		{"?label=env%3Ddev", []string{"beta task"}, []string{"alpha task"}},
		{"?label=env", []string{"alpha task", "beta task"}, nil},
		{"?agent=" + e.in.DeviceID, []string{"alpha task", "beta task"}, nil},
		{"?agent=" + uuid.NewString(), nil, []string{"alpha task", "beta task"}},
		{"?status=approved", nil, []string{"alpha task"}},
		{"?risk=critical", nil, []string{"alpha task", "beta task"}},
	}
	for _, c := range cases {
		for _, path := range []string{"/console/inbox" + c.query, "/console/inbox/list" + c.query} {
			ans := b.get(path)
			if ans.status != 200 {
				t.Fatalf("%s: %d", path, ans.status)
			}
			for _, s := range c.has {
				if !strings.Contains(ans.body, s) {
					t.Errorf("%s lacks %q", path, s)
				}
			}
			for _, s := range c.hasNo {
				if strings.Contains(ans.body, s) {
					t.Errorf("%s shows %q", path, s)
				}
			}
		}
	}
	if ans := b.get("/console/inbox?status=bogus"); ans.status != 400 {
		t.Errorf("bad status: %d", ans.status)
	}
	if ans := e.as(t, "other").get("/console/inbox"); strings.Contains(ans.body, "alpha task") {
		t.Error("another organization sees the inbox")
	}
	_ = a

	// Live updates: a new handoff makes the stream say "changed" within a poll or two.
	req, _ := http.NewRequest("GET", e.in.URL+"/console/inbox/events", nil)
	req.AddCookie(&http.Cookie{Name: console.SessionCookieName(false), Value: b.cookie})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := testhttp.Client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	buf := make([]byte, 256)
	n, _ := res.Body.Read(buf) // the retry line
	if !strings.Contains(string(buf[:n]), "retry:") {
		t.Fatalf("first event %q", buf[:n])
	}
	create(t, ag, client.CreateRequest{Action: "shell.exec", Title: "gamma task"})
	var seen strings.Builder
	for !strings.Contains(seen.String(), "event: changed") {
		n, err := res.Body.Read(buf)
		if err != nil {
			t.Fatalf("stream ended before a change (%v): %q", err, seen.String())
		}
		seen.Write(buf[:n])
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	admin := e.as(t, "admin")
	a := admin.post("/console/devices", url.Values{"name": {"ci runner"}})
	if a.status != 200 {
		t.Fatalf("create: %d", a.status)
	}
	m := regexp.MustCompile(`<pre class="token">(ony_dev_[^<]+)</pre>`).FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no token on the result page:\n%s", a.body)
	}
	tok := m[1]
	list := admin.get("/console/devices")
	if !strings.Contains(list.body, "ci runner") || strings.Contains(list.body, tok) {
		t.Fatalf("list: has device %v, shows token %v", strings.Contains(list.body, "ci runner"), strings.Contains(list.body, tok))
	}
	c, _ := client.New(e.in.URL, tok, nil)
	if _, _, err := c.Create(context.Background(), client.CreateRequest{Action: "x.y", Title: "t"}, ""); err != nil {
		t.Fatalf("new token does not work: %v", err)
	}
	id := regexp.MustCompile(`/console/devices/([0-9a-f-]{36})/revoke`).FindAllStringSubmatch(list.body, -1)
	if len(id) != 2 {
		t.Fatalf("revoke forms: %d", len(id))
	}
	for _, who := range []string{"member", "viewer"} {
		if a := e.as(t, who).post("/console/devices", url.Values{"name": {"x"}}); a.status != 403 {
			t.Errorf("%s create: %d", who, a.status)
		}
	}
	if a := e.as(t, "other").post("/console/devices/"+e.in.DeviceID+"/revoke", nil); a.status != 404 {
		t.Errorf("other org revoke: %d", a.status)
	}
	if a := admin.post("/console/devices/"+id[0][1]+"/revoke", nil); a.status != 303 {
		t.Fatalf("revoke: %d", a.status)
	}
	if a := admin.post("/console/devices/"+uuid.NewString()+"/revoke", nil); a.status != 404 {
		t.Errorf("revoke unknown: %d", a.status)
	}
	list = admin.get("/console/devices")
	if !strings.Contains(list.body, "revoked") {
		t.Error("revoked device not shown as revoked")
	}
	if e.logs.String() != "" && strings.Contains(e.logs.String(), tok) {
		t.Error("token logged")
	}
}

func TestLadders(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	admin := e.as(t, "admin")
	bad := "name: oncall\nsteps:\n  - channels: [console]\n    targets: [role:admin]\n    wait: forever\n"
	a := admin.post("/console/ladders/oncall", url.Values{"yaml": {bad}, "action": {"save"}})
	if a.status != 400 || !strings.Contains(a.body, "line 5") || !strings.Contains(a.body, "wait: forever") {
		t.Fatalf("bad ladder: %d\n%s", a.status, a.body)
	}
	good := strings.Replace(bad, "forever", "5m", 1)
	a = admin.post("/console/ladders/oncall", url.Values{"yaml": {good}, "action": {"preview"}})
	if a.status != 200 || !strings.Contains(a.body, "Preview (not saved)") || !strings.Contains(a.body, "&#43;5m") {
		t.Fatalf("preview: %d\n%s", a.status, a.body)
	}
	if list := admin.get("/console/ladders"); strings.Contains(list.body, ">oncall<") {
		t.Fatal("preview saved the ladder")
	}
	a = admin.post("/console/ladders/oncall", url.Values{"yaml": {good}, "action": {"save"}})
	if a.status != 303 {
		t.Fatalf("save: %d\n%s", a.status, a.body)
	}
	if list := admin.get("/console/ladders"); !strings.Contains(list.body, ">oncall<") {
		t.Fatal("saved ladder not listed")
	}
	// A second version; the history lists both and opens the first.
	if a := admin.post("/console/ladders/oncall", url.Values{"yaml": {strings.Replace(good, "5m", "7m", 1)}, "action": {"save"}}); a.status != 303 {
		t.Fatalf("save v2: %d", a.status)
	}
	hist := admin.get("/console/ladders/oncall")
	if !strings.Contains(hist.body, "?version=1") || !strings.Contains(hist.body, "?version=2") || !strings.Contains(hist.body, "wait: 7m") {
		t.Fatalf("history:\n%s", hist.body)
	}
	if v1 := admin.get("/console/ladders/oncall?version=1"); !strings.Contains(v1.body, "wait: 5m") || !strings.Contains(v1.body, "Showing version 1") {
		t.Fatalf("version 1: %d", v1.status)
	}
	if a := admin.get("/console/ladders/oncall?version=9"); a.status != 404 {
		t.Errorf("unknown version: %d", a.status)
	}
	view := e.as(t, "viewer").get("/console/ladders/oncall")
	if view.status != 200 || strings.Contains(view.body, "<textarea") || !strings.Contains(view.body, "wait: 7m") {
		t.Errorf("viewer's view: %d", view.status)
	}
	for _, who := range []string{"member", "viewer"} {
		if a := e.as(t, who).post("/console/ladders/oncall", url.Values{"yaml": {good}, "action": {"save"}}); a.status != 403 {
			t.Errorf("%s save: %d", who, a.status)
		}
	}
	// The other organization's admin may start a ladder of that name (an empty editor), never see ours.
	if o := e.as(t, "other"); strings.Contains(o.get("/console/ladders").body, ">oncall<") || strings.Contains(o.get("/console/ladders/oncall").body, "version 1") {
		t.Error("another organization sees the ladder")
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	create(t, e.in.Agent(t), client.CreateRequest{Action: "shell.exec", Title: "audited"})
	admin := e.as(t, "admin")
	a := admin.get("/console/audit")
	if a.status != 200 || !strings.Contains(a.body, "handoff.created") || !strings.Contains(a.body, "device.created") {
		t.Fatalf("audit page: %d", a.status)
	}
	if f := admin.get("/console/audit?type=device.created"); strings.Contains(f.body, "<code>handoff.created</code>") {
		t.Error("type filter did not filter")
	}
	v := e.as(t, "viewer").post("/console/audit/verify", nil)
	if v.status != 200 || !strings.Contains(v.body, "Verified:") {
		t.Fatalf("verify: %d", v.status)
	}
	x := admin.get("/console/audit/export")
	if x.status != 200 || !strings.Contains(x.header.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(strings.TrimSpace(x.body), "{") {
		t.Fatalf("export: %d %q", x.status, x.header.Get("Content-Disposition"))
	}
	if o := e.as(t, "other").get("/console/audit"); strings.Contains(o.body, "<code>handoff.created</code>") {
		t.Error("another organization sees the log")
	}
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	anon := e.as(t, "anon")
	login := func(password, next string, hdr map[string]string) answer {
		tok := anon.publicForm("/console/login")
		return anon.do("POST", "/console/login", url.Values{"email": {e.in.Admin.Email}, "password": {password}, "next": {next}, "csrf": {tok}}, hdr)
	}
	a := login("wrong", "/console/audit", nil)
	if a.status != 401 || !strings.Contains(a.body, "wrong email or password") || !strings.Contains(a.body, `value="/console/audit"`) {
		t.Fatalf("wrong password: %d", a.status)
	}
	if a := login(e.in.Password, "", map[string]string{"Sec-Fetch-Site": "cross-site"}); a.status != 403 {
		t.Fatalf("cross-site login: %d", a.status)
	}
	anon.publicForm("/console/login")
	if a := anon.do("POST", "/console/login", url.Values{"email": {e.in.Admin.Email}, "password": {e.in.Password}}, nil); a.status != 403 {
		t.Fatalf("login without the form token: %d", a.status)
	}
	a = login(e.in.Password, "//evil.example/x", nil)
	if a.status != 303 || a.header.Get("Location") != "/console/inbox" {
		t.Fatalf("login: %d %q", a.status, a.header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == server.SessionCookie {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v", sess)
	}
	b := &browser{t: t, base: e.in.URL, cookie: sess.Value}
	if b.get("/console/inbox").status != 200 {
		t.Fatal("signed-in inbox")
	}
	// The console's session works for the API too.
	if r := b.get("/v1/auth/me"); r.status != 200 || !strings.Contains(r.body, e.in.Admin.ID) {
		t.Fatalf("API with the console's cookie: %d", r.status)
	}
	if a := b.do("POST", "/console/logout", url.Values{}, nil); a.status != 403 {
		t.Fatalf("logout without token: %d", a.status)
	}
	if a := b.post("/console/logout", nil); a.status != 303 {
		t.Fatalf("logout: %d", a.status)
	}
	if b.get("/console/inbox").status != 303 {
		t.Fatal("session survived logout")
	}
	if r := anon.get("/"); r.status != 302 || r.header.Get("Location") != "/console/" {
		t.Errorf("root: %d %q", r.status, r.header.Get("Location"))
	}
	if r := anon.get("/console/static/style.css"); r.status != 200 || !strings.Contains(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("css: %d", r.status)
	}
	if r := anon.get("/v1/nope"); !strings.Contains(r.body, `"not_found"`) {
		t.Errorf("API 404 lost its JSON: %q", r.body)
	}
}

// TestDeactivated: a deactivated person's session stops at once, on pages and on forms.
func TestDeactivated(t *testing.T) {
	t.Parallel()
	e := startEnv(t)
	b := e.as(t, "member")
	tok := b.csrf()
	ctx := context.Background()
	err := e.in.App.Store.InOrg(ctx, e.in.OrgID, func(tx store.OrgTx) error {
		u, err := tx.UserByID(ctx, e.in.Member.ID)
		if err != nil {
			return err
		}
		u.Active = false
		return tx.UpdateUser(ctx, u)
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := b.get("/console/inbox"); a.status != 303 {
		t.Errorf("inbox: %d", a.status)
	}
	h := create(t, e.in.Agent(t), client.CreateRequest{Action: "shell.exec", Title: "t"})
	if a := b.do("POST", "/console/handoffs/"+h.ID+"/decide", url.Values{"option": {"approve"}, "csrf": {tok}}, nil); a.status != 401 {
		t.Errorf("decide: %d", a.status)
	}
}

// TestInboxSpeed measures the inbox with a full page of handoffs (one list, one device list and one
// timeline read per shown row).
// BenchmarkInbox renders the inbox with 50 rows shown of 60 pending (SQLite): one list query, the
// agents, and each shown row's notifications.
func BenchmarkInbox(b *testing.B) {
	e := startEnv(b)
	ag := e.in.Agent(b)
	for i := 0; i < 60; i++ {
		create(b, ag, client.CreateRequest{Action: "shell.exec", Title: "task"})
	}
	admin := e.as(b, "admin")
	// The ladder's console rungs run in jobs: let them land, so every iteration reads the same rows.
	time.Sleep(2 * time.Second)
	// The API's inbox (JSON, no timelines) is the baseline the page is read against.
	for _, path := range []string{"/console/inbox", "/v1/inbox"} {
		b.Run(strings.TrimPrefix(path, "/"), func(b *testing.B) {
			for b.Loop() {
				if a := admin.get(path); a.status != 200 {
					b.Fatal(a.status)
				}
			}
		})
	}
}
