package oidc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/problem"
)

// claimsUser is a mockoidc user whose ID token carries exactly the given claims (beside iss, aud,
// exp, nonce…), so tests can send groups as a string, email_verified false or odd claim names.
type claimsUser struct {
	sub      string
	claims   map[string]any
	userinfo map[string]any // what /userinfo answers (with sub added unless it sets one)
}

func (u claimsUser) ID() string { return u.sub }

func (u claimsUser) Userinfo([]string) ([]byte, error) {
	out := map[string]any{"sub": u.sub}
	for k, v := range u.userinfo {
		out[k] = v
	}
	return json.Marshal(out)
}

func (u claimsUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	out := jwt.MapClaims{}
	b, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	for k, v := range u.claims {
		out[k] = v
	}
	return out, nil
}

// seen records what reached the provider, to check PKCE and nonce from its side.
type seen struct {
	mu                         sync.Mutex
	challenge, method, nonce   string
	verifier, tokenClientID    string
	authorizeCalls, tokenCalls int
}

type env struct {
	mock   *mockoidc.MockOIDC
	app    *httptest.Server
	p      *Provider
	seen   *seen
	logs   *bytes.Buffer
	result chan finishResult
}

type finishResult struct {
	id   Identity
	next string
	err  error
}

type envOpts struct {
	badNonce bool // the provider puts another nonce in the token than the one asked for
	// badVerifier replaces the code_verifier on its way to the token endpoint, to show the provider
	// checks it against the challenge (so the flow really depends on the verifier Ony keeps).
	badVerifier bool
	cfg         func(*Config)
	now         func() time.Time
}

// newEnv starts mockoidc and an app whose /login calls Begin and /callback calls Finish.
func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{mock: m, seen: &seen{}, logs: &bytes.Buffer{}, result: make(chan finishResult, 1)}
	if err := m.AddMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case mockoidc.AuthorizationEndpoint:
				q := r.URL.Query()
				e.seen.mu.Lock()
				e.seen.authorizeCalls++
				e.seen.challenge, e.seen.method, e.seen.nonce = q.Get("code_challenge"), q.Get("code_challenge_method"), q.Get("nonce")
				e.seen.mu.Unlock()
				if o.badNonce {
					q.Set("nonce", "not-the-nonce-ony-sent")
					r.URL.RawQuery = q.Encode()
				}
			case mockoidc.TokenEndpoint:
				if err := r.ParseForm(); err == nil {
					e.seen.mu.Lock()
					e.seen.tokenCalls++
					e.seen.verifier, e.seen.tokenClientID = r.PostForm.Get("code_verifier"), r.PostForm.Get("client_id")
					e.seen.mu.Unlock()
					if o.badVerifier && r.PostForm.Get("code_verifier") != "" {
						v := []byte(r.PostForm.Get("code_verifier"))
						v[0] = map[bool]byte{true: 'y', false: 'x'}[v[0] == 'x']
						r.Form.Set("code_verifier", string(v))
						r.PostForm.Set("code_verifier", r.Form.Get("code_verifier"))
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		e.p.Begin(w, r, r.URL.Query().Get("next"))
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		id, next, err := e.p.Finish(r.Context(), w, r)
		e.result <- finishResult{id, next, err}
		if err != nil {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("signed in"))
	})
	e.app = httptest.NewServer(mux)
	t.Cleanup(e.app.Close)

	cfg := Config{
		Issuer: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
		RedirectURL: e.app.URL + "/callback", Scopes: []string{"openid", "email", "profile", "groups"},
		StateKey: bytes.Repeat([]byte{7}, 32),
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	e.p, err = New(context.Background(), cfg, Deps{Logger: slog.New(slog.NewTextHandler(e.logs, nil)), Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func jarClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: testhttp.Client.Transport, Jar: jar, Timeout: 10 * time.Second}
}

// run follows the whole flow in one client: app → provider → app.
func (e *env) run(t *testing.T, c *http.Client, next string) (finishResult, int) {
	t.Helper()
	resp, err := c.Get(e.app.URL + "/login?next=" + url.QueryEscape(next))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case r := <-e.result:
		return r, resp.StatusCode
	case <-time.After(5 * time.Second):
		t.Fatalf("the callback was never reached (last status %d)", resp.StatusCode)
		return finishResult{}, 0
	}
}

func TestFlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.mock.QueueUser(claimsUser{sub: "u-1", claims: map[string]any{
		"email": "Ann@Example.com", "email_verified": true, "name": "Ann Lee", "groups": []string{"ony-admins", "staff"},
	}})
	r, status := e.run(t, jarClient(t), "/console/handoffs/h1?x=1")
	if r.err != nil || status != http.StatusOK {
		t.Fatalf("flow failed: %d %v\nlogs: %s", status, r.err, e.logs)
	}
	want := Identity{Issuer: e.mock.Issuer(), Subject: "u-1", Email: "ann@example.com", Name: "Ann Lee", Groups: []string{"ony-admins", "staff"}}
	if !equalIdentity(r.id, want) {
		t.Errorf("identity = %+v, want %+v", r.id, want)
	}
	if r.next != "/console/handoffs/h1?x=1" {
		t.Errorf("next = %q", r.next)
	}

	// PKCE: S256 was asked for, and the verifier the token request carried hashes to the challenge.
	e.seen.mu.Lock()
	defer e.seen.mu.Unlock()
	if e.seen.method != "S256" || e.seen.verifier == "" {
		t.Fatalf("PKCE not used: method %q verifier %q", e.seen.method, e.seen.verifier)
	}
	sum := sha256.Sum256([]byte(e.seen.verifier))
	if got := base64.RawURLEncoding.EncodeToString(sum[:]); got != e.seen.challenge {
		t.Errorf("challenge %q does not match the verifier's S256 %q", e.seen.challenge, got)
	}
	if e.seen.nonce == "" {
		t.Error("no nonce sent")
	}
}

func equalIdentity(a, b Identity) bool {
	return a.Issuer == b.Issuer && a.Subject == b.Subject && a.Email == b.Email && a.Name == b.Name &&
		strings.Join(a.Groups, "\n") == strings.Join(b.Groups, "\n")
}

// TestFlowCookie: the flow cookie is HttpOnly, Lax, short-lived, Secure and __Host- on https, and is
// cleared by Finish.
func TestFlowCookie(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		e := newEnv(t, envOpts{cfg: func(c *Config) { c.SecureCookie = secure }})
		rec := httptest.NewRecorder()
		e.p.Begin(rec, httptest.NewRequest("GET", "/login", nil), "//evil.example")
		res := rec.Result()
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), e.mock.AuthorizationEndpoint()+"?") {
			t.Fatalf("Begin: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		loc, _ := url.Parse(res.Header.Get("Location"))
		if q := loc.Query(); q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" || q.Get("state") == q.Get("nonce") {
			t.Errorf("authorize URL lacks PKCE/state/nonce: %s", loc.RawQuery)
		}
		cs := res.Cookies()
		if len(cs) != 1 {
			t.Fatalf("cookies: %v", cs)
		}
		c := cs[0]
		wantName := "ony_sso"
		if secure {
			wantName = "__Host-ony_sso"
		}
		if c.Name != wantName || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure || c.MaxAge != 600 || c.Path != "/" {
			t.Errorf("cookie %+v", c)
		}
		if strings.Contains(c.Value, loc.Query().Get("state")) {
			t.Error("the cookie carries the state in the clear")
		}
		// Finish on a forged callback still clears the cookie.
		req := httptest.NewRequest("GET", "/callback?state=x&code=y", nil)
		req.AddCookie(c)
		rec = httptest.NewRecorder()
		if _, _, err := e.p.Finish(context.Background(), rec, req); err == nil {
			t.Error("forged state accepted")
		}
		if cl := rec.Result().Cookies(); len(cl) != 1 || cl[0].Name != wantName || cl[0].MaxAge >= 0 {
			t.Errorf("cookie not cleared: %v", cl)
		}
	}
}

// callback runs the flow up to the provider's redirect back, without following it.
func (e *env) callback(t *testing.T, c *http.Client) *url.URL {
	t.Helper()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), e.app.URL+"/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(e.app.URL + "/login?next=/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("provider answered %d", resp.StatusCode)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	c.CheckRedirect = nil
	return u
}

func (e *env) finish(t *testing.T, c *http.Client, u *url.URL) finishResult {
	t.Helper()
	resp, err := c.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return <-e.result
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	p, ok := problem.As(err)
	if !ok || p.Code != code {
		t.Fatalf("err = %v, want problem %s", err, code)
	}
}

func TestFlowRefusals(t *testing.T) {
	t.Parallel()
	t.Run("tampered state", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		c := jarClient(t)
		u := e.callback(t, c)
		q := u.Query()
		st := []byte(q.Get("state"))
		st[0] ^= 1
		q.Set("state", string(st))
		u.RawQuery = q.Encode()
		wantCode(t, e.finish(t, c, u).err, "sso_failed")
		if e.seen.tokenCalls != 0 {
			t.Error("the code was exchanged despite a bad state")
		}
	})
	t.Run("missing cookie", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		u := e.callback(t, jarClient(t))
		wantCode(t, e.finish(t, jarClient(t), u).err, "sso_failed") // another browser
		if !strings.Contains(e.logs.String(), "without a flow cookie") {
			t.Errorf("logs: %s", e.logs)
		}
	})
	t.Run("cookie from another flow", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		c := jarClient(t)
		u := e.callback(t, c)
		_ = e.callback(t, c) // a second Begin replaces the cookie; the first callback no longer matches
		wantCode(t, e.finish(t, c, u).err, "sso_failed")
	})
	t.Run("flow older than 10 minutes", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		skew := time.Duration(0)
		e := newEnv(t, envOpts{now: func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }})
		c := jarClient(t)
		u := e.callback(t, c)
		mu.Lock()
		skew = FlowTTL + time.Second
		mu.Unlock()
		// The browser would have dropped the cookie (Max-Age); send it anyway, as an attacker could.
		req := httptest.NewRequest("GET", u.String(), nil)
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		_, _, err := e.p.Finish(context.Background(), httptest.NewRecorder(), req)
		wantCode(t, err, "sso_failed")
		if !strings.Contains(e.logs.String(), "expired") || e.seen.tokenCalls != 0 {
			t.Errorf("refused for another reason: %s", e.logs)
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		c := jarClient(t)
		u := e.callback(t, c)
		if r := e.finish(t, c, u); r.err != nil {
			t.Fatal(r.err)
		}
		wantCode(t, e.finish(t, c, u).err, "sso_failed") // cookie cleared by the first
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{badNonce: true})
		r, _ := e.run(t, jarClient(t), "/")
		wantCode(t, r.err, "sso_failed")
		if !strings.Contains(e.logs.String(), "nonce mismatch") {
			t.Errorf("refused for another reason: %s", e.logs)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{badVerifier: true})
		r, _ := e.run(t, jarClient(t), "/")
		wantCode(t, r.err, "sso_failed")
		if !strings.Contains(e.logs.String(), "code exchange failed") || !strings.Contains(e.logs.String(), "invalid_grant") {
			t.Errorf("refused for another reason: %s", e.logs)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		c := jarClient(t)
		u := e.callback(t, c)
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		u.RawQuery = q.Encode()
		wantCode(t, e.finish(t, c, u).err, "sso_denied")
	})
	t.Run("email unverified", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		e.mock.QueueUser(claimsUser{sub: "u", claims: map[string]any{"email": "a@example.com", "email_verified": false}})
		r, _ := e.run(t, jarClient(t), "/")
		wantCode(t, r.err, "sso_email_unverified")
	})
	t.Run("email missing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOpts{})
		e.mock.QueueUser(claimsUser{sub: "u", claims: map[string]any{"name": "No Mail"}})
		r, _ := e.run(t, jarClient(t), "/")
		wantCode(t, r.err, "sso_email_missing")
	})
	t.Run("wrong client id", func(t *testing.T) {
		t.Parallel()
		// The token is for mockoidc's client; a provider configured for another audience refuses it.
		e := newEnv(t, envOpts{})
		other, err := New(context.Background(), Config{
			Issuer: e.mock.Issuer(), ClientID: "someone-else", RedirectURL: e.app.URL + "/callback",
			StateKey: bytes.Repeat([]byte{7}, 32),
		}, Deps{Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		c := jarClient(t)
		u := e.callback(t, c)
		e.p.oauth.ClientID = e.mock.ClientID
		other.oauth = e.p.oauth // exchange as the real client, verify as "someone-else"
		req := httptest.NewRequest("GET", u.String(), nil)
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		_, _, err = other.Finish(context.Background(), httptest.NewRecorder(), req)
		wantCode(t, err, "sso_failed")
		if !strings.Contains(e.logs.String(), "id token refused") || !strings.Contains(e.logs.String(), "audience") {
			t.Errorf("refused for another reason: %s", e.logs)
		}
	})
}

// TestFlowClaims: configurable claim names, groups as one string.
func TestFlowClaims(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: func(c *Config) { c.EmailClaim, c.NameClaim, c.GroupsClaim = "upn", "display", "realm.roles" }})
	e.mock.QueueUser(claimsUser{sub: "u", claims: map[string]any{
		"upn": "bo@example.com", "display": "Bo\x07 Ek", "realm": map[string]any{"roles": "ops"},
	}})
	r, _ := e.run(t, jarClient(t), "https://evil.example/")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, e.logs)
	}
	if r.id.Email != "bo@example.com" || r.id.Name != "Bo Ek" || len(r.id.Groups) != 1 || r.id.Groups[0] != "ops" {
		t.Errorf("identity %+v", r.id)
	}
	if r.next != DefaultNext {
		t.Errorf("next = %q, want the default", r.next)
	}
}

// TestFlowUserinfo: claims a thin ID token lacks come from userinfo, never overriding the token's own,
// and only when userinfo is about the same subject.
func TestFlowUserinfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	e.mock.QueueUser(claimsUser{sub: "thin", claims: map[string]any{"name": "From Token"}, userinfo: map[string]any{
		"email": "thin@example.com", "email_verified": true, "name": "From Userinfo", "groups": []string{"ops"}}})
	r, _ := e.run(t, jarClient(t), "/")
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, e.logs)
	}
	if r.id.Email != "thin@example.com" || r.id.Name != "From Token" || len(r.id.Groups) != 1 || r.id.Groups[0] != "ops" {
		t.Errorf("identity %+v", r.id)
	}

	e.mock.QueueUser(claimsUser{sub: "thin", claims: map[string]any{}, userinfo: map[string]any{"email": "a@example.com", "email_verified": false}})
	r, _ = e.run(t, jarClient(t), "/")
	wantCode(t, r.err, "sso_email_unverified")

	e.mock.QueueUser(claimsUser{sub: "thin", claims: map[string]any{}, userinfo: map[string]any{"sub": "someone-else", "email": "a@example.com"}})
	r, _ = e.run(t, jarClient(t), "/")
	wantCode(t, r.err, "sso_email_missing")
}

func TestNewDiscoveryFails(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "c", RedirectURL: "http://x/cb", StateKey: make([]byte, 32)}, Deps{})
	if err == nil {
		t.Fatal("discovery of a 404 succeeded")
	}
	if _, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "c", RedirectURL: "http://x/cb", StateKey: make([]byte, 16)}, Deps{}); err == nil {
		t.Fatal("short state key accepted")
	}
}

func TestStateExpiry(t *testing.T) {
	t.Parallel()
	aead, err := newAEAD(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	v, err := sealState(aead, bytes.NewReader(make([]byte, 64)), flowState{State: "s", Nonce: "n", Verifier: "v", Expires: now.Add(FlowTTL).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openState(aead, v, now.Add(FlowTTL-time.Second)); err != nil {
		t.Errorf("fresh state refused: %v", err)
	}
	if _, err := openState(aead, v, now.Add(FlowTTL)); err == nil {
		t.Error("expired state accepted")
	}
	other, _ := newAEAD(bytes.Repeat([]byte{2}, 32))
	if _, err := openState(other, v, now); !errors.Is(err, errBadState) {
		t.Errorf("state sealed under another key: %v", err)
	}
}

func TestLazyRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	now := time.Unix(1_800_000_000, 0)
	cfg := e.p.cfg
	cfg.Issuer = e.mock.Addr() + "/missing"
	l := NewLazy(cfg, Deps{Now: func() time.Time { return now }})
	if _, err := l.Get(context.Background()); err == nil {
		t.Fatal("discovery of a missing issuer succeeded")
	}
	l.cfg.Issuer = e.mock.Issuer() // the provider "comes back"
	if _, err := l.Get(context.Background()); err == nil {
		t.Fatal("retried before RetryAfter")
	}
	now = now.Add(RetryAfter)
	p, err := l.Get(context.Background())
	if err != nil || p == nil {
		t.Fatalf("no retry after RetryAfter: %v", err)
	}
	if p2, _ := l.Get(context.Background()); p2 != p {
		t.Error("a second Get discovered again")
	}
}
