package server

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// SessionCookie holds a person's session id.
const SessionCookie = "ony_session"

type actorKey struct{}

func actorFrom(ctx context.Context) handoff.Actor { return ctx.Value(actorKey{}).(handoff.Actor) }

var errUnauthenticated = problem.New(problem.Unauthorized, "unauthenticated",
	"send a device token (Authorization: Bearer ony_dev_…) or sign in")

// authed resolves the caller to an actor: an agent by bearer token, or a person by session cookie.
func (s *Server) authed(next handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var a handoff.Actor
		var err error
		if h := r.Header.Get("Authorization"); h != "" {
			a, err = s.deviceActor(r.Context(), h)
		} else if c, cerr := r.Cookie(SessionCookie); cerr == nil {
			a, err = s.sessionActor(r.Context(), c.Value)
			if err == nil && unsafeMethod(r.Method) {
				err = s.checkCSRF(r)
			}
		} else {
			err = errUnauthenticated
		}
		if err != nil {
			return err
		}
		return next(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	}
}

func (s *Server) deviceActor(ctx context.Context, header string) (handoff.Actor, error) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || auth.ParseToken(strings.TrimSpace(tok), auth.DeviceTokenPrefix) != nil {
		return handoff.Actor{}, errUnauthenticated
	}
	var d store.Device
	err := s.store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		d, err = tx.DeviceByTokenHash(ctx, auth.HashToken(strings.TrimSpace(tok)))
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.RevokedAt != nil) {
		return handoff.Actor{}, problem.New(problem.Unauthorized, "invalid_token", "the device token is unknown or revoked")
	}
	if err != nil {
		return handoff.Actor{}, err
	}
	return handoff.Actor{OrgID: d.OrgID, Kind: store.ActorDevice, ID: d.ID, Name: d.Name}, nil
}

func (s *Server) sessionActor(ctx context.Context, value string) (handoff.Actor, error) {
	if auth.ParseToken(value, auth.SessionIDPrefix) != nil {
		return handoff.Actor{}, errUnauthenticated
	}
	var a handoff.Actor
	err := s.store.InSystem(ctx, func(tx store.SystemTx) error {
		sess, err := tx.SessionByHash(ctx, auth.HashToken(value))
		if err != nil {
			return err
		}
		if !s.now().Before(sess.ExpiresAt) {
			return store.ErrNotFound
		}
		a = handoff.Actor{OrgID: sess.OrgID, Kind: store.ActorUser, ID: sess.UserID}
		return nil
	})
	if err == nil {
		err = s.store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
			u, err := tx.UserByID(ctx, a.ID)
			if err == nil && !u.Active {
				err = store.ErrNotFound
			}
			a.Name, a.Role = u.Name, u.Role
			return err
		})
	}
	if errors.Is(err, store.ErrNotFound) {
		return handoff.Actor{}, problem.New(problem.Unauthorized, "session_expired", "your session has ended; sign in again")
	}
	return a, err
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// checkCSRF guards cookie-authenticated writes: the cookie is SameSite=Strict, the body must be JSON
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

// dummyHash makes a login for an unknown email cost as much as one for a known email.
// Computed on first use, not at start: it costs as much as a real hash.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("ony-dummy-password-for-timing")
	return h
})

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	// Login-CSRF: a cross-site form could otherwise sign the victim into the attacker's account.
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	var b loginBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	email, err := org.NormalizeEmail(b.Email)
	if err != nil || b.Password == "" {
		return problem.New(problem.Invalid, "invalid_login", "email and password are required")
	}
	ctx := r.Context()
	acctKey, addrKey := "login:acct:"+email, "login:addr:"+clientAddr(r)
	for _, k := range []struct {
		key   string
		limit int64
	}{{acctKey, s.cfg.LoginPerAccount}, {addrKey, s.cfg.LoginPerAddress}} {
		l, err := s.coord.Peek(ctx, k.key, k.limit, s.cfg.LoginWindow)
		if err != nil {
			return fmt.Errorf("login rate limit: %w", err)
		}
		if !l.Allowed {
			p := problem.New(problem.RateLimited, "too_many_attempts", "too many sign-in attempts; try again later")
			p.RetryAfter = l.RetryAfter
			return p
		}
	}
	var u store.User
	err = s.store.InSystem(ctx, func(tx store.SystemTx) (err error) { u, err = tx.UserByEmail(ctx, email); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	hash := u.PasswordHash
	if err != nil || !u.Active {
		hash = dummyHash()
	}
	ok, verr := auth.VerifyPassword(hash, b.Password)
	if verr != nil || !ok || err != nil || !u.Active {
		for _, k := range []struct {
			key   string
			limit int64
		}{{acctKey, s.cfg.LoginPerAccount}, {addrKey, s.cfg.LoginPerAddress}} {
			if _, err := s.coord.Hit(ctx, k.key, k.limit, s.cfg.LoginWindow); err != nil {
				return fmt.Errorf("login rate limit: %w", err)
			}
		}
		s.log.InfoContext(ctx, "login failed", "addr", clientAddr(r))
		return problem.New(problem.Unauthorized, "invalid_credentials", "wrong email or password")
	}
	_ = s.coord.Reset(ctx, acctKey)

	tok, err := auth.NewToken(auth.SessionIDPrefix)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	sess := store.Session{IDHash: tok.Hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.InOrg(ctx, u.OrgID, func(tx store.OrgTx) error { return tx.CreateSession(ctx, sess) }); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok.Plain, Path: "/", Expires: sess.ExpiresAt,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	s.log.InfoContext(ctx, "login", "org", u.OrgID, "user", u.ID)
	writeJSON(w, http.StatusOK, meView{OrgID: u.OrgID, UserID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Kind: "user", ExpiresAt: &sess.ExpiresAt})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	c, err := r.Cookie(SessionCookie)
	if a.Kind != store.ActorUser || err != nil {
		return problem.New(problem.Invalid, "not_a_session", "only a signed-in person can sign out")
	}
	err = s.store.InOrg(r.Context(), a.OrgID, func(tx store.OrgTx) error { return tx.DeleteSession(r.Context(), auth.HashToken(c.Value)) })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	a := actorFrom(r.Context())
	writeJSON(w, http.StatusOK, meView{OrgID: a.OrgID, UserID: a.ID, Name: a.Name, Role: a.Role, Kind: string(a.Kind)})
	return nil
}

// clientAddr is the peer's IP. Proxy headers are not trusted: a spoofed X-Forwarded-For would let
// an attacker pick a fresh rate-limit bucket per attempt.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
