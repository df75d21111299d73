package app_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestSSOWiring (issue 13, oidc): with oidc.issuer set, app.New builds the provider from the
// configuration (discovery, the keyring-derived state key, the redirect URL) and its directory
// creates an allow_unknown member in the instance's organization, with the role the groups map to.
func TestSSOWiring(t *testing.T) {
	t.Parallel()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })

	// The console's two routes, standing in until it mounts them.
	var in *testserver.Instance
	type result struct {
		u   store.User
		err error
	}
	results := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		p, err := in.App.SSO.Get(r.Context())
		if err != nil {
			t.Error(err)
			return
		}
		p.Begin(w, r, "/console/handoffs/x")
	})
	mux.HandleFunc("GET /cb", func(w http.ResponseWriter, r *http.Request) {
		p, _ := in.App.SSO.Get(r.Context())
		id, next, err := p.Finish(r.Context(), w, r)
		if err == nil && next != "/console/handoffs/x" {
			t.Errorf("next = %q", next)
		}
		var u store.User
		if err == nil {
			u, err = p.Resolve(r.Context(), id)
		}
		results <- result{u, err}
	})
	console := httptest.NewServer(mux)
	t.Cleanup(console.Close)

	in = testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.OIDC.Issuer, c.OIDC.ClientID, c.OIDC.ClientSecret = m.Issuer(), m.ClientID, config.Secret(m.ClientSecret)
		c.OIDC.RedirectURL = console.URL + "/cb"
		c.OIDC.Scopes = []string{"openid", "email", "profile", "groups"}
		c.OIDC.Roles = map[string]string{"engineering": "member", "design": "viewer"}
		c.OIDC.AllowUnknown = true
	}}).Seed(t)
	if in.App.SSO == nil {
		t.Fatal("oidc.issuer set but no SSO provider")
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: testhttp.Client.Transport, Jar: jar, Timeout: time.Minute}
	m.QueueUser(&mockoidc.MockUser{Subject: "s1", Email: "Jane@Example.com", EmailVerified: true, Groups: []string{"design", "engineering"}})
	resp, err := c.Get(console.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var r result
	select {
	case r = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("callback never reached")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.u.OrgID != in.OrgID || r.u.Email != "jane@example.com" || r.u.Role != store.RoleMember || !r.u.Active {
		t.Errorf("member %+v", r.u)
	}
}
