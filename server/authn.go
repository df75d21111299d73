package server

import (
	"context"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// SessionCookie holds a person's session id when the public URL is http; on https the name is
// session.CookieName(true), "__Host-ony_session". Use s.cookieName().
const SessionCookie = "ony_session"

func (s *Server) cookieName() string { return session.CookieName(s.cfg.SecureCookies) }

// setSessionCookie sets (or, with an empty token, clears) the session cookie. SameSite=Lax so that a
// console link opened from Slack or mail arrives signed in; writes are guarded by checkCSRF.
func (s *Server) setSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	c := &http.Cookie{Name: s.cookieName(), Value: token, Path: "/", Expires: expires, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
	if token == "" {
		c.Expires, c.MaxAge = time.Time{}, -1
	}
	http.SetCookie(w, c)
}

type actorKey struct{}

func actorFrom(ctx context.Context) handoff.Actor { return ctx.Value(actorKey{}).(handoff.Actor) }

// authed resolves the caller to an actor: an agent by bearer token, or a person by session cookie.
func (s *Server) authed(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var p session.Principal
		var err error
		if h := r.Header.Get("Authorization"); h != "" {
			p, err = s.resolveBearer(r.Context(), h)
		} else if c, cerr := r.Cookie(s.cookieName()); cerr == nil {
			p, err = s.sessions.ResolveSession(r.Context(), c.Value)
			if err == nil && unsafeMethod(r.Method) {
				err = s.checkCSRF(r)
			}
		} else {
			err = session.ErrUnauthenticated
		}
		if err != nil {
			return err
		}
		a := handoff.Actor{OrgID: p.OrgID, Kind: p.Kind, ID: p.ID, Name: p.Name, Role: p.Role}
		return next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

// resolveBearer: a Bearer header is a token sent, so anything wrong with it — empty, malformed,
// unknown, revoked — is "invalid_token"; another scheme is no device token at all ("unauthenticated").
func (s *Server) resolveBearer(ctx context.Context, header string) (session.Principal, error) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(header), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return session.Principal{}, session.ErrUnauthenticated
	}
	return s.sessions.ResolveDevice(ctx, strings.TrimSpace(tok))
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// checkCSRF guards cookie-authenticated writes: the cookie is SameSite=Lax, the body must be JSON
// (which a cross-site form cannot send without a preflight), and a present Origin must be our own.
func (s *Server) checkCSRF(r *http.Request) error {
	// A form or text/plain post needs no CORS preflight, so a foreign page could send one; JSON and
	// YAML (ladders) cannot be sent cross-origin without the preflight this server never grants.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && mt != "application/yaml" {
		return problem.New(problem.Forbidden, "csrf", "send JSON with Content-Type: application/json (ladders: application/yaml)")
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.sameOrigin(origin, r) {
		return problem.New(problem.Forbidden, "csrf", "cross-origin request refused")
	}
	return nil
}

func (s *Server) sameOrigin(origin string, r *http.Request) bool {
	o, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if p, err := url.Parse(s.cfg.PublicURL); err == nil && o.Scheme == p.Scheme && o.Host == p.Host {
		return true
	}
	return o.Host == r.Host
}

type loginBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	TOTP     string `json:"totp"` // optional; without it a person with TOTP gets totp_required and a challenge
}

type meView struct {
	OrgID     string     `json:"org_id"`
	UserID    string     `json:"user_id"`
	Email     string     `json:"email,omitempty"`
	Name      string     `json:"name"`
	Role      store.Role `json:"role,omitempty"`
	Kind      string     `json:"kind"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	// Login-CSRF: a cross-site form could otherwise sign the victim into the attacker's account.
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	var b loginBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	in, err := s.sessions.LoginWith(r.Context(), session.Credentials{Email: b.Email, Password: b.Password, TOTP: b.TOTP,
		ClientAddr: clientAddr(r, s.cfg.TrustedProxies), UserAgent: r.UserAgent()})
	if err != nil {
		return err
	}
	s.signedIn(w, in)
	return nil
}

// signedIn sets the new session's cookie and answers who signed in.
func (s *Server) signedIn(w http.ResponseWriter, in session.SignedIn) {
	s.setSessionCookie(w, in.Token, in.ExpiresAt)
	u := in.User
	writeJSON(w, http.StatusOK, meView{OrgID: u.OrgID, UserID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Kind: "user", ExpiresAt: &in.ExpiresAt})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	c, err := r.Cookie(s.cookieName())
	if a.Kind != store.ActorUser || err != nil {
		return problem.New(problem.Invalid, "not_a_session", "only a signed-in person can sign out")
	}
	if err := s.sessions.Logout(r.Context(), a.OrgID, c.Value); err != nil {
		return err
	}
	s.setSessionCookie(w, "", time.Time{})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type passwordBody struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

// changePassword is POST /v1/auth/password: a signed-in person replaces their own password, and their
// other sessions end (this one stays).
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	c, err := r.Cookie(s.cookieName())
	if a.Kind != store.ActorUser || err != nil {
		return problem.New(problem.Invalid, "not_a_session", "only a signed-in person can change their password")
	}
	var b passwordBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	p := session.Principal{OrgID: a.OrgID, Kind: a.Kind, ID: a.ID, Name: a.Name, Role: a.Role}
	ended, err := s.sessions.ChangePassword(r.Context(), p, c.Value, b.Current, b.New, clientAddr(r, s.cfg.TrustedProxies))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"sessions_ended": ended})
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	writeJSON(w, http.StatusOK, meView{OrgID: a.OrgID, UserID: a.ID, Name: a.Name, Role: a.Role, Kind: string(a.Kind)})
	return nil
}
