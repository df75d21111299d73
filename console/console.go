// Package console is Ony's web console: server-rendered pages (html/template, embedded templates and
// CSS, one small optional script) over the same services the API calls, under /console/.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every console response: no inline script or style, nothing
// from elsewhere, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Deps are the services the console calls. The first group is required; every interface after it
// is optional, and nil makes its page say the feature is not configured.
type Deps struct {
	Handoffs   *handoff.Service
	Escalation *escalation.Engine
	Audit      *audit.Log
	Sessions   *session.Service
	Org        org.Service
	// Store is handed to audit.Log's methods, which take it as a parameter; the console never
	// queries it itself.
	Store   store.Store
	Keyring *keyring.Keyring
	Logger  *slog.Logger
	Clock   func() time.Time

	// ClientAddr says which address failed sign-ins count against (the server's trusted-proxy rule);
	// nil means the peer address.
	ClientAddr func(*http.Request) string

	TOTPLogin   TOTPLogin // second sign-in step; nil: sign-in is password only
	StepUp      StepUp    // nil: no TOTP field on decisions
	Decide      DecideFunc
	Team        Team
	Settings    Settings
	Profile     Profile
	TOTP        TOTPEnrolment
	SessionList SessionList
	Invites     Invites
	Recovery    Recovery
	Providers   Providers
	SSO         SSO // nil: no "Sign in with SSO" button
	Eraser      Eraser
	// ChatLinks links chat accounts from the profile (issue 14); nil hides it.
	ChatLinks ChatLinks
	// PhoneVerify verifies the person's own phone number from the profile (issue 15); nil hides it.
	PhoneVerify PhoneVerify
}

// Config tunes the console.
type Config struct {
	PublicURL     string
	SecureCookies bool
	// MaxStreams bounds concurrent live-update streams (64); StreamPoll is how often a stream re-reads
	// the inbox (3s); StreamHeartbeat how often it sends a comment to keep proxies from closing it (15s);
	// StreamMax how long one stream lasts before the browser reconnects (1m).
	MaxStreams      int
	StreamPoll      time.Duration
	StreamHeartbeat time.Duration
	StreamMax       time.Duration
}

// Console serves the pages.
type Console struct {
	d       Deps
	cfg     Config
	pages   map[string]*template.Template
	csrfKey []byte
	cop     *http.CrossOriginProtection
	static  http.Handler

	streams   atomic.Int64
	drainOnce sync.Once
	drain     chan struct{}
}

// New builds the console; templates are parsed here so a broken one fails at start.
func New(d Deps, cfg Config) (*Console, error) {
	if d.Handoffs == nil || d.Escalation == nil || d.Audit == nil || d.Sessions == nil || d.Store == nil || d.Keyring == nil {
		return nil, errors.New("console: handoffs, escalation, audit, sessions, store and keyring are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 64
	}
	if cfg.StreamPoll <= 0 {
		cfg.StreamPoll = 3 * time.Second
	}
	if cfg.StreamHeartbeat <= 0 {
		cfg.StreamHeartbeat = 15 * time.Second
	}
	if cfg.StreamMax <= 0 {
		cfg.StreamMax = time.Minute
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	c := &Console{d: d, cfg: cfg, pages: map[string]*template.Template{}, drain: make(chan struct{}),
		csrfKey: d.Keyring.Derive("ony console csrf v1", "")}
	if len(c.csrfKey) == 0 {
		return nil, errors.New("console: the keyring has no key")
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		c.pages[base] = t
	}
	c.cop = http.NewCrossOriginProtection()
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme != "" && u.Host != "" {
			_ = c.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
		}
	}
	c.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusForbidden, "This request came from another site and was refused.")
	}))
	sub, _ := fs.Sub(staticFS, "static")
	c.static = http.StripPrefix("/console/static/", http.FileServerFS(sub))
	return c, nil
}

// Drain ends the live-update streams; call it before http.Server.Shutdown.
func (c *Console) Drain() { c.drainOnce.Do(func() { close(c.drain) }) }

// SessionCookieName is the cookie that carries a person's session, shared with the API: one name
// (session.CookieName), so signing in on either side signs in on both.
func SessionCookieName(secure bool) string { return session.CookieName(secure) }

func (c *Console) cookieName() string { return SessionCookieName(c.cfg.SecureCookies) }

// Register adds the console's routes to mux.
func (c *Console) Register(mux *http.ServeMux) {
	h := func(pattern string, fn http.Handler) { mux.Handle(pattern, c.headers(fn)) }
	h("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	h("GET /console/{$}", http.RedirectHandler("/console/inbox", http.StatusFound))
	h("GET /console", http.RedirectHandler("/console/inbox", http.StatusFound))
	mux.Handle("GET /console/static/", c.staticHeaders(c.static))
	h("/console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.notFound(w, r) }))

	h("GET /console/login", c.public(c.loginPage))
	h("POST /console/login", c.public(c.loginSubmit))
	h("POST /console/login/totp", c.public(c.loginTOTPSubmit))
	h("POST /console/logout", c.authed(anyRole, c.logout))
	h("GET /console/sso/login", http.HandlerFunc(c.ssoLogin))
	h("GET /console/sso/callback", http.HandlerFunc(c.ssoCallback))

	h("GET /console/inbox", c.authed(anyRole, c.inbox))
	h("GET /console/inbox/list", c.authed(anyRole, c.inboxList))
	h("GET /console/inbox/events", c.authed(anyRole, c.inboxEvents))
	h("GET /console/handoffs/{id}", c.authed(anyRole, c.handoffPage))
	h("POST /console/handoffs/{id}/decide", c.authed(anyRole, c.decide))

	h("GET /console/devices", c.authed(adminOnly, c.devices))
	h("POST /console/devices", c.authed(adminOnly, c.createDevice))
	h("POST /console/devices/{id}/revoke", c.authed(adminOnly, c.revokeDevice))

	h("GET /console/ladders", c.authed(anyRole, c.ladders))
	h("GET /console/ladders/{name}", c.authed(anyRole, c.ladderPage))
	h("POST /console/ladders/{name}", c.authed(adminOnly, c.ladderSubmit))

	h("GET /console/audit", c.authed(anyRole, c.auditPage))
	h("POST /console/audit/verify", c.authed(anyRole, c.auditVerify))
	h("GET /console/audit/export", c.authed(adminOnly, c.auditExport))

	c.registerSkeletons(h)
}

// headers sets the security headers every console response carries, and refuses cross-origin
// unsafe requests before any handler runs.
func (c *Console) headers(next http.Handler) http.Handler {
	protected := c.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header(), "no-store")
		w.Header().Set("Cross-Origin-Opener-Policy", "same-origin")
		protected.ServeHTTP(w, r)
	})
}

func (c *Console) staticHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header(), "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// setHeaders sets what every console response carries: the strict CSP, no sniffing, no framing.
func setHeaders(h http.Header, cache string) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", cache)
}

// req is one signed-in request.
type req struct {
	P     session.Principal
	Token string // the session id, from the cookie
	CSRF  string
}

func (q *req) actor() handoff.Actor {
	return handoff.Actor{OrgID: q.P.OrgID, Kind: store.ActorUser, ID: q.P.ID, Name: q.P.Name, Role: q.P.Role}
}

func (q *req) auditActor() audit.Actor {
	return audit.Actor{Kind: string(store.ActorUser), ID: q.P.ID, Role: string(q.P.Role)}
}

type roleCheck func(store.Role) bool

func anyRole(store.Role) bool     { return true }
func adminOnly(r store.Role) bool { return r == store.RoleAdmin }

type pageFunc func(w http.ResponseWriter, r *http.Request, q *req) error

// authed resolves the session cookie; without a valid one a GET goes to the login page (with a safe
// next) and anything else is refused. Unsafe methods must carry the form's CSRF token.
func (c *Console) authed(allowed roleCheck, fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(c.cookieName())
		var p session.Principal
		if err == nil {
			p, err = c.d.Sessions.ResolveSession(r.Context(), ck.Value)
		}
		if err != nil {
			if _, ok := problem.As(err); !ok && !errors.Is(err, http.ErrNoCookie) {
				c.fail(w, r, nil, err)
				return
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(safeNext(r.URL.RequestURI())), http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, http.StatusUnauthorized, "Your session has ended; sign in again.")
			return
		}
		q := &req{P: p, Token: ck.Value}
		q.CSRF = c.csrfToken(ck.Value)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 512<<10)
			if !c.csrfOK(r, ck.Value) {
				c.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from this console. Go back, reload and try again.")
				return
			}
		}
		if !allowed(p.Role) {
			c.render(w, r, http.StatusForbidden, "error", q, map[string]any{"Title": "Not allowed", "Message": "Only admins can use this page."})
			return
		}
		if err := fn(w, r, q); err != nil {
			c.fail(w, r, q, err)
		}
	})
}

// preCookie carries a random value for forms shown before sign-in (login, invite, reset), so they get
// a per-form token like every other form; it is not a session and grants nothing.
const preCookie = "ony_console_form"

type preKey struct{}

// public serves a page that needs no session. Its forms carry a token bound to preCookie; a POST
// without both is refused (CrossOriginProtection in headers refuses cross-site ones first).
func (c *Console) public(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(preCookie)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			got := r.PostFormValue("csrf")
			if err != nil || got == "" || !hmac.Equal([]byte(got), []byte(c.preToken(ck.Value))) {
				c.errorPage(w, r, http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
				return
			}
		} else if err != nil || len(ck.Value) < 16 {
			b := make([]byte, 18)
			_, _ = rand.Read(b)
			ck = &http.Cookie{Name: preCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/console/",
				HttpOnly: true, Secure: c.cfg.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600}
			http.SetCookie(w, ck)
		}
		r = r.WithContext(context.WithValue(r.Context(), preKey{}, c.preToken(ck.Value)))
		if err := fn(w, r, nil); err != nil {
			c.fail(w, r, nil, err)
		}
	})
}

func (c *Console) preToken(v string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("form|" + v))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfToken is the per-form token: an HMAC of the session id under a key derived from the keyring,
// so it needs no storage and dies with the session.
func (c *Console) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte("session|" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) csrfOK(r *http.Request, sessionID string) bool {
	got := r.PostFormValue("csrf")
	if got == "" {
		got = r.Header.Get("X-CSRF-Token")
	}
	return got != "" && hmac.Equal([]byte(got), []byte(c.csrfToken(sessionID)))
}

// safeNext keeps a redirect target only when it is a path of this console: no scheme, no host, no
// protocol-relative // or backslash tricks.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/console/inbox"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/console/inbox"
	}
	return next
}

// render executes page into a buffer first, so a template error becomes a clean 500.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, q *req, data map[string]any) {
	t, ok := c.pages[page]
	if !ok {
		c.d.Logger.ErrorContext(r.Context(), "console: no such template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Page"] = page
	data["SSO"] = c.d.SSO != nil
	if q != nil {
		data["Me"] = q.P
		data["CSRF"] = q.CSRF
		data["IsAdmin"] = q.P.Role == store.RoleAdmin
		data["CanDecide"] = q.P.Role.CanDecide()
	} else if tok, ok := r.Context().Value(preKey{}).(string); ok {
		data["CSRF"] = tok
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		c.d.Logger.ErrorContext(r.Context(), "console: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (c *Console) renderFragment(w http.ResponseWriter, r *http.Request, page, name string, data any) {
	var b strings.Builder
	if err := c.pages[page].ExecuteTemplate(&b, name, data); err != nil {
		c.d.Logger.ErrorContext(r.Context(), "console: render fragment", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// notFound is the one 404 page: an unknown id and another organization's id look the same.
func (c *Console) notFound(w http.ResponseWriter, r *http.Request) {
	c.errorPage(w, r, http.StatusNotFound, "There is nothing here, or you cannot see it.")
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", nil, map[string]any{"Title": http.StatusText(status), "Message": msg})
}

// fail renders an error: a problem's own message (written for people, never carrying payloads),
// a single 404 page for anything not found, and nothing of an internal error but that it happened.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, q *req, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		c.d.Logger.WarnContext(r.Context(), "console: database unavailable", "route", r.Pattern)
		c.errorPage(w, r, http.StatusServiceUnavailable, "The database cannot be reached; try again shortly.")
		return
	}
	if p, ok := problem.As(err); ok {
		st := p.Kind.Status()
		if st == http.StatusNotFound {
			c.notFound(w, r)
			return
		}
		if st == http.StatusUnauthorized && q == nil {
			c.errorPage(w, r, st, "Sign in again.")
			return
		}
		c.render(w, r, st, "error", q, map[string]any{"Title": http.StatusText(st), "Message": p.Message})
		return
	}
	c.d.Logger.ErrorContext(r.Context(), "console: request failed", "route", r.Pattern, "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", q, map[string]any{"Title": "Error", "Message": "Something went wrong on our side."})
}

// problemMessage is what a form shows for an error it can show; ok is false for errors that need fail.
func problemMessage(err error) (string, bool) {
	p, ok := problem.As(err)
	if !ok || p.Kind == problem.NotFound {
		return "", false
	}
	return p.Message, true
}

func (c *Console) now() time.Time { return c.d.Clock() }

func (c *Console) clientAddr(r *http.Request) string {
	if c.d.ClientAddr != nil {
		return c.d.ClientAddr(r)
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = strings.Trim(host[:i], "[]")
	}
	return host
}

func redirect(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func statusFor(err error) int {
	if p, ok := problem.As(err); ok {
		return p.Kind.Status()
	}
	return 0
}
