package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestConsoleSSO (issue 13, wire): through the console's own routes against an in-process provider,
// an invited email signs in, joins the organization with the invite's role and lands where it set
// out for, signed in; an unknown email is refused with a page that says why, and gets no session.
func TestConsoleSSO(t *testing.T) {
	t.Parallel()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	in := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.OIDC.Issuer, c.OIDC.ClientID, c.OIDC.ClientSecret = m.Issuer(), m.ClientID, config.Secret(m.ClientSecret)
	}}).Seed(t)
	if in.App.SSO == nil {
		t.Fatal("no SSO provider")
	}
	ctx := context.Background()
	admin := audit.Actor{Kind: "user", ID: in.Admin.ID, Role: string(store.RoleAdmin)}
	if _, err := in.App.Team.Invite(ctx, admin, in.OrgID, "jane@example.com", store.RoleViewer); err != nil {
		t.Fatal(err)
	}

	get := func(c *http.Client, path string) (*http.Response, string) {
		t.Helper()
		res, err := c.Get(in.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	browser := func() *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Transport: testhttp.Client.Transport, Jar: jar, Timeout: time.Minute}
	}
	sessionOf := func(c *http.Client) string {
		for _, ck := range c.Jar.Cookies(mustURL(t, in.URL)) {
			if ck.Name == session.CookieName(false) {
				return ck.Value
			}
		}
		return ""
	}

	if _, page := get(browser(), "/console/login?next=/console/audit"); !strings.Contains(page, `href="/console/sso/login?next=%2fconsole%2faudit"`) {
		t.Fatalf("no SSO button on the login page:\n%s", page)
	}

	jane := browser()
	m.QueueUser(&mockoidc.MockUser{Subject: "jane-1", Email: "Jane@Example.com", EmailVerified: true})
	res, page := get(jane, "/console/sso/login?next=/console/audit")
	if res.StatusCode != 200 || res.Request.URL.Path != "/console/audit" || sessionOf(jane) == "" {
		t.Fatalf("invited sign-in: %d at %s\n%s", res.StatusCode, res.Request.URL, page)
	}
	_, me := get(jane, "/v1/auth/me")
	ms, err := in.App.Team.Members(ctx, in.OrgID)
	if err != nil {
		t.Fatal(err)
	}
	joined := false
	for _, x := range ms {
		joined = joined || (x.Email == "jane@example.com" && x.Role == store.RoleViewer && x.Active && strings.Contains(me, x.ID))
	}
	if !joined || !strings.Contains(me, `"role":"viewer"`) {
		t.Fatalf("the joined member: %s", me)
	}

	bob := browser()
	m.QueueUser(&mockoidc.MockUser{Subject: "bob-1", Email: "bob@example.com", EmailVerified: true})
	res, page = get(bob, "/console/sso/login")
	if res.StatusCode != 403 || !strings.Contains(page, "your account is not a member of this organization") || sessionOf(bob) != "" {
		t.Fatalf("unknown email: %d, session %v\n%s", res.StatusCode, sessionOf(bob) != "", page)
	}
	if strings.Contains(page, "sso_unknown_user") || strings.Contains(page, "bob@example.com") {
		t.Error("the refusal page shows internals")
	}

	// A callback not begun by this browser is refused the same readable way.
	res, page = get(browser(), "/console/sso/callback?state=x&code=y")
	if res.StatusCode != 401 || !strings.Contains(page, "single sign-on failed") {
		t.Fatalf("forged callback: %d\n%s", res.StatusCode, page)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
