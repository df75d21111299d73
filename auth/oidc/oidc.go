// Package oidc signs people in through an OpenID Connect provider (authorization code flow with PKCE,
// state and nonce) and maps the identity it vouches for to a member of the organization.
package oidc

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// FlowTTL bounds how long a person may spend at the provider between Begin and Finish.
const FlowTTL = 10 * time.Minute

// Config is what New needs; config.OIDC carries it from the operator.
type Config struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string   // registered at the provider; the console's /console/sso/callback
	Scopes       []string // nil → openid, email, profile; "openid" is added when missing
	// Claim names; empty → email, name, groups. A dotted name ("realm_access.roles") reaches into a
	// nested object when no claim has the literal name.
	EmailClaim, NameClaim, GroupsClaim string
	// StateKey seals the flow cookie: 32 bytes, e.g. keyring.Derive("oidc-state", "").
	StateKey []byte
	// SecureCookie sets Secure (and the __Host- name) on the flow cookie: the public URL is https.
	SecureCookie bool
	// Roles maps a group the provider sends to a role; the highest mapped role wins.
	Roles map[string]store.Role
	// DefaultRole is the role when Roles maps none of a person's groups (and of people created with
	// AllowUnknown when Roles is empty). Empty refuses those people when Roles is set.
	DefaultRole store.Role
	// AllowUnknown creates a member for an email that is neither a member nor invited.
	AllowUnknown bool
	// Org names the organization (name or id) SSO signs into; Directory.OrgID resolves it.
	Org string
}

// Deps are the collaborators; zero values take production defaults.
type Deps struct {
	Directory  Directory
	Logger     *slog.Logger
	HTTPClient *http.Client     // nil → a client with a 10s timeout
	Now        func() time.Time // nil → time.Now
	Rand       io.Reader        // nil → crypto/rand
}

// Identity is who the provider vouches for, read from a verified ID token.
type Identity struct {
	Issuer  string
	Subject string
	Email   string // lower-cased
	Name    string
	Groups  []string
}

// Provider runs the sign-in flow against one issuer.
type Provider struct {
	cfg      Config
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
	disc     *gooidc.Provider
	client   *http.Client
	aead     cipher.AEAD
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader
	mapper   *Mapper
}

// New discovers the issuer's endpoints and keys. The discovery request is bounded by the HTTP
// client's timeout as well as ctx, so a provider that hangs cannot hold up start-up forever.
func New(ctx context.Context, cfg Config, d Deps) (*Provider, error) {
	aead, err := newAEAD(cfg.StateKey)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, client id and redirect URL are required")
	}
	if cfg.EmailClaim == "" {
		cfg.EmailClaim = "email"
	}
	if cfg.NameClaim == "" {
		cfg.NameClaim = "name"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "email", "profile"}
	} else if !contains(scopes, gooidc.ScopeOpenID) {
		scopes = append([]string{gooidc.ScopeOpenID}, scopes...)
	}
	client := d.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	p := &Provider{cfg: cfg, client: client, aead: aead, log: d.Logger, now: d.Now, rand: d.Rand}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if d.Directory != nil {
		if p.mapper, err = NewMapper(cfg, d.Directory); err != nil {
			return nil, err
		}
	}
	disc, err := gooidc.NewProvider(gooidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.Issuer, err)
	}
	p.disc = disc
	p.oauth = oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
		Endpoint: disc.Endpoint(), Scopes: scopes,
	}
	// The verifier checks the signature (keys fetched with client), iss, aud = client id and exp.
	p.verifier = disc.Verifier(&gooidc.Config{ClientID: cfg.ClientID, Now: p.now})
	return p, nil
}

// CookieName is the flow cookie's name: __Host- prefixed on https, so no subdomain can plant one.
func (p *Provider) CookieName() string {
	if p.cfg.SecureCookie {
		return "__Host-ony_sso"
	}
	return "ony_sso"
}

// Begin starts a sign-in: it sets the flow cookie and redirects the browser to the provider. next is
// where to land afterwards; anything but a local path becomes DefaultNext.
func (p *Provider) Begin(w http.ResponseWriter, r *http.Request, next string) {
	state, err1 := p.random()
	nonce, err2 := p.random()
	if err := errors.Join(err1, err2); err != nil {
		p.log.ErrorContext(r.Context(), "sso: no randomness", "err", err)
		http.Error(w, "sign-in is unavailable", http.StatusServiceUnavailable)
		return
	}
	verifier := oauth2.GenerateVerifier()
	now := p.now()
	sealed, err := sealState(p.aead, p.rand, flowState{
		State: state, Nonce: nonce, Verifier: verifier, Next: SafeNext(next), Expires: now.Add(FlowTTL).Unix(),
	})
	if err != nil {
		p.log.ErrorContext(r.Context(), "sso: sealing the flow state", "err", err)
		http.Error(w, "sign-in is unavailable", http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, p.cookie(sealed, int(FlowTTL/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (p *Provider) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: p.CookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: p.cfg.SecureCookie, SameSite: http.SameSiteLaxMode,
	}
}

func (p *Provider) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Errors Finish returns; every one is a problem.Error the server's mapper renders. Details of what
// failed go to the log, never to the browser.
func errFlow() error {
	return problem.New(problem.Unauthorized, "sso_failed", "single sign-on failed; start again from the sign-in page")
}

// Finish completes a sign-in on the redirect back from the provider: it checks the state against the
// flow cookie, exchanges the code with the PKCE verifier, verifies the ID token and its nonce, and
// reads the identity. It clears the flow cookie whatever the outcome, so a flow is used once. next
// is the (safe) path Begin was given.
func (p *Provider) Finish(ctx context.Context, w http.ResponseWriter, r *http.Request) (Identity, string, error) {
	c, cookieErr := r.Cookie(p.CookieName())
	http.SetCookie(w, p.cookie("", -1))
	if cookieErr != nil {
		p.log.InfoContext(ctx, "sso: callback without a flow cookie")
		return Identity{}, "", errFlow()
	}
	st, err := openState(p.aead, c.Value, p.now())
	if err != nil {
		p.log.InfoContext(ctx, "sso: flow cookie refused", "err", err)
		return Identity{}, "", errFlow()
	}
	q := r.URL.Query()
	// The state comes first, for error answers too (they carry it): only the flow this browser began
	// may end it, whichever way.
	if got := q.Get("state"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(st.State)) != 1 {
		p.log.InfoContext(ctx, "sso: state mismatch")
		return Identity{}, "", errFlow()
	}
	if e := q.Get("error"); e != "" {
		// The provider's error code is a fixed vocabulary (access_denied, …); quote it short in the log.
		p.log.InfoContext(ctx, "sso: provider refused", "error", short(e))
		return Identity{}, "", problem.New(problem.Unauthorized, "sso_denied", "the identity provider did not sign you in")
	}
	code := q.Get("code")
	if code == "" {
		p.log.InfoContext(ctx, "sso: callback without a code")
		return Identity{}, "", errFlow()
	}
	hctx := gooidc.ClientContext(ctx, p.client)
	tok, err := p.oauth.Exchange(hctx, code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		p.log.WarnContext(ctx, "sso: code exchange failed", "err", exchangeReason(err))
		return Identity{}, "", errFlow()
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		p.log.WarnContext(ctx, "sso: token response without an id_token")
		return Identity{}, "", errFlow()
	}
	id, err := p.verifyToken(hctx, tok, raw, st.Nonce)
	if err != nil {
		return Identity{}, "", err
	}
	return id, SafeNext(st.Next), nil
}

// verifyToken checks the ID token (signature, iss, aud, exp, then nonce) and reads the identity.
func (p *Provider) verifyToken(ctx context.Context, tok *oauth2.Token, raw, nonce string) (Identity, error) {
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		p.log.WarnContext(ctx, "sso: id token refused", "err", err)
		return Identity{}, errFlow()
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		p.log.WarnContext(ctx, "sso: id token nonce mismatch")
		return Identity{}, errFlow()
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		p.log.WarnContext(ctx, "sso: id token claims unreadable", "err", err)
		return Identity{}, errFlow()
	}
	p.addUserinfo(ctx, tok, idt.Subject, claims)
	id, err := readClaims(claims, p.cfg.EmailClaim, p.cfg.NameClaim, p.cfg.GroupsClaim)
	if err != nil {
		p.log.InfoContext(ctx, "sso: identity refused", "subject", short(idt.Subject), "err", err)
		return Identity{}, err
	}
	id.Issuer, id.Subject = idt.Issuer, idt.Subject
	return id, nil
}

// addUserinfo fills claims the ID token lacks from the userinfo endpoint: some providers (Okta's org
// authorization server, for one) send a thin ID token and keep email, name or groups for userinfo.
// Only the claims Ony reads are taken, only when absent from the ID token, and only from a userinfo
// answer about the same subject; a failure leaves the ID token's claims as they are.
func (p *Provider) addUserinfo(ctx context.Context, tok *oauth2.Token, subject string, claims map[string]any) {
	names := []string{p.cfg.EmailClaim, p.cfg.NameClaim, p.cfg.GroupsClaim}
	missing := false
	for _, n := range names {
		if claim(claims, n) == nil {
			missing = true
		}
	}
	if !missing || p.disc.UserInfoEndpoint() == "" || tok.AccessToken == "" {
		return
	}
	ui, err := p.disc.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		p.log.InfoContext(ctx, "sso: userinfo unavailable; using the id token's claims", "err", err)
		return
	}
	if ui.Subject != subject {
		p.log.WarnContext(ctx, "sso: userinfo is about another subject; ignored")
		return
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return
	}
	for _, n := range append(names, "email_verified") {
		if claim(claims, n) != nil {
			continue
		}
		// The literal name, or the top-level object a dotted name reaches into.
		for _, k := range []string{n, rootOf(n)} {
			if _, taken := claims[k]; !taken && extra[k] != nil {
				claims[k] = extra[k]
				break
			}
		}
	}
}

// rootOf is the top-level claim a (possibly dotted) claim name lives in.
func rootOf(name string) string {
	root, _, _ := strings.Cut(name, ".")
	return root
}

// readClaims takes the email (required; refused when the provider says it is unverified), the name
// and the groups (a list, or one string) from the token's claims.
func readClaims(claims map[string]any, emailClaim, nameClaim, groupsClaim string) (Identity, error) {
	rawEmail, _ := claim(claims, emailClaim).(string)
	if strings.TrimSpace(rawEmail) == "" {
		return Identity{}, problem.New(problem.Forbidden, "sso_email_missing",
			"the identity provider sent no email address; ask your administrator to release the %s claim", emailClaim)
	}
	email, err := auth.NormalizeEmail(rawEmail)
	if err != nil {
		return Identity{}, problem.New(problem.Forbidden, "sso_email_missing", "the identity provider sent no usable email address")
	}
	// Only the standard claim says whether the address is verified; absent means the provider does not
	// say, which most enterprise providers (they own the domain) do not.
	switch v := claims["email_verified"].(type) {
	case bool:
		if !v {
			return Identity{}, errUnverified()
		}
	case string: // some providers (Cognito) send "true"/"false"
		if strings.EqualFold(v, "false") {
			return Identity{}, errUnverified()
		}
	}
	id := Identity{Email: email}
	if name, ok := claim(claims, nameClaim).(string); ok {
		id.Name = cleanName(name)
	}
	switch g := claim(claims, groupsClaim).(type) {
	case string:
		if g = strings.TrimSpace(g); g != "" {
			id.Groups = []string{g}
		}
	case []any:
		for _, e := range g {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				id.Groups = append(id.Groups, strings.TrimSpace(s))
			}
		}
	}
	return id, nil
}

func errUnverified() error {
	return problem.New(problem.Forbidden, "sso_email_unverified", "the identity provider has not verified your email address")
}

// claim looks up name, or a dotted path into nested objects when no claim has the literal name.
func claim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var cur any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// maxNameRunes is org's limit on a member's name.
const maxNameRunes = 100

// cleanName drops control characters and bounds the length; the name is shown on pages and in chat.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > maxNameRunes {
		s = strings.TrimSpace(string(r[:maxNameRunes]))
	}
	return s
}

// exchangeReason keeps the provider's error code and drops its body, which may echo the request.
func exchangeReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if re.ErrorCode != "" {
			return fmt.Sprintf("%s (HTTP %d)", short(re.ErrorCode), re.Response.StatusCode)
		}
		return fmt.Sprintf("HTTP %d", re.Response.StatusCode)
	}
	return err.Error()
}

func short(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b, _ := json.Marshal(s)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
