package server

// Two-step sign-in, a person's sessions and their TOTP enrolment (issue 13, totp helper).

import (
	"encoding/base64"
	"net/http"

	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

func (s *Server) sessionRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/auth/login/totp", s.handle(s.loginTOTP))
	mux.Handle("GET /v1/auth/sessions", s.handle(s.authed(s.listSessions)))
	mux.Handle("DELETE /v1/auth/sessions/{id}", s.handle(s.authed(s.revokeSession)))
	mux.Handle("POST /v1/auth/totp/begin", s.handle(s.authed(s.totpBegin)))
	mux.Handle("POST /v1/auth/totp/confirm", s.handle(s.authed(s.totpConfirm)))
	mux.Handle("POST /v1/auth/totp/disable", s.handle(s.authed(s.totpDisable)))
}

type loginTOTPBody struct {
	Challenge string `json:"challenge"`
	TOTP      string `json:"totp"`
}

// loginTOTP is POST /v1/auth/login/totp: the second step of a sign-in that answered totp_required.
func (s *Server) loginTOTP(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	var b loginTOTPBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	in, err := s.sessions.LoginTOTP(r.Context(), b.Challenge, b.TOTP, clientAddr(r, s.cfg.TrustedProxies), r.UserAgent())
	if err != nil {
		return err
	}
	s.signedIn(w, in)
	return nil
}

// person is the signed-in person behind a session cookie, and that cookie's value.
func (s *Server) person(r *http.Request) (string, error) {
	a := actorFrom(r.Context())
	c, err := r.Cookie(s.cookieName())
	if a.Kind != store.ActorUser || err != nil {
		return "", problem.New(problem.Invalid, "not_a_session", "only a signed-in person has sessions and a second factor")
	}
	return c.Value, nil
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.person(r)
	if err != nil {
		return err
	}
	a := actorFrom(r.Context())
	list, err := s.sessions.List(r.Context(), a.OrgID, a.ID, tok)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
	return nil
}

// revokeSession is DELETE /v1/auth/sessions/{id}: one of the caller's own sessions, by public id.
func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.person(r); err != nil {
		return err
	}
	a := actorFrom(r.Context())
	if err := s.sessions.Revoke(r.Context(), a.OrgID, a.ID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type totpBody struct {
	TOTP string `json:"totp"`
}

func (s *Server) totpService() error {
	if s.cfg.TOTP == nil {
		return problem.New(problem.NotFound, "not_configured", "two-factor authentication is not configured")
	}
	return nil
}

// totpBegin is POST /v1/auth/totp/begin: a new pending secret, shown once (text, otpauth URL, QR).
func (s *Server) totpBegin(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.person(r); err != nil {
		return err
	}
	if err := s.totpService(); err != nil {
		return err
	}
	a := actorFrom(r.Context())
	var u store.User
	if err := s.store.InOrg(r.Context(), a.OrgID, func(tx store.OrgTx) (err error) { u, err = tx.UserByID(r.Context(), a.ID); return err }); err != nil {
		return err
	}
	e, err := s.cfg.TOTP.Begin(r.Context(), a.OrgID, a.ID, u.Email)
	if err != nil {
		return err
	}
	// The secret is in this answer only; never cache it.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]string{"secret": e.Secret, "otpauth_url": e.URL,
		"qr_png_base64": base64.StdEncoding.EncodeToString(e.QRPNG)})
	return nil
}

// totpConfirm is POST /v1/auth/totp/confirm {totp}: turns the pending secret on. The caller's other
// sessions end: they were opened without the second factor.
func (s *Server) totpConfirm(w http.ResponseWriter, r *http.Request) error {
	return s.totpChange(w, r, true)
}

// totpDisable is POST /v1/auth/totp/disable {totp}: turns it off, given a valid code.
func (s *Server) totpDisable(w http.ResponseWriter, r *http.Request) error {
	return s.totpChange(w, r, false)
}

func (s *Server) totpChange(w http.ResponseWriter, r *http.Request, on bool) error {
	tok, err := s.person(r)
	if err != nil {
		return err
	}
	if err := s.totpService(); err != nil {
		return err
	}
	var b totpBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	a := actorFrom(r.Context())
	if on {
		err = s.cfg.TOTP.Confirm(r.Context(), a.OrgID, a.ID, b.TOTP)
	} else {
		err = s.cfg.TOTP.Disable(r.Context(), a.OrgID, a.ID, b.TOTP)
	}
	if err != nil {
		if p, ok := problem.As(err); ok && p.Kind == problem.Unauthorized {
			q := *p
			q.Kind = problem.Forbidden // the session is fine; the code is not
			return &q
		}
		return err
	}
	// A change of the second factor is a privilege change: the person's other sessions end.
	ended, err := s.sessions.RevokeAll(r.Context(), a.OrgID, a.ID, tok)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"enrolled": on, "sessions_ended": ended})
	return nil
}
