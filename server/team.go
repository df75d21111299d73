package server

// The team API (issue 13): members, invites, roles, deactivation, password reset by link, and the
// organization's settings. The org service checks roles itself; these handlers only decode, call it
// and shape the answer. Another organization's people are the same 404 as unknown ones, because every
// call is scoped to the caller's own org.

import (
	"context"
	"net/http"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// SetTeam gives the server the team service (wired by internal/app); without it the team routes
// answer 503.
func (s *Server) SetTeam(t org.Service) { s.team = &t }

// mountTeam registers the team routes.
func (s *Server) mountTeam(mux *http.ServeMux) {
	mux.Handle("GET /v1/team", s.handle(s.authed(s.listTeam)))
	mux.Handle("POST /v1/team/invites", s.handle(s.authed(s.invite)))
	mux.Handle("POST /v1/team/{user_id}/role", s.handle(s.authed(s.setRole)))
	mux.Handle("POST /v1/team/{user_id}/deactivate", s.handle(s.authed(s.deactivate)))
	mux.Handle("POST /v1/team/{user_id}/reactivate", s.handle(s.authed(s.reactivate)))
	mux.Handle("POST /v1/invites/accept", s.handle(s.acceptInvite))
	mux.Handle("POST /v1/auth/forgot", s.handle(s.forgotPassword))
	mux.Handle("POST /v1/auth/reset", s.handle(s.resetPassword))
	mux.Handle("GET /v1/settings", s.handle(s.authed(s.getSettings)))
	mux.Handle("PUT /v1/settings", s.handle(s.authed(s.putSettings)))
}

func (s *Server) teamService() (*org.Service, error) {
	if s.team == nil {
		return nil, problem.New(problem.Unavailable, "team_unavailable", "team management is not configured on this server")
	}
	return s.team, nil
}

// person returns the team service and the signed-in person as the audit log names them.
func (s *Server) teamActor(r *http.Request) (*org.Service, audit.Actor, string, error) {
	t, err := s.teamService()
	if err != nil {
		return nil, audit.Actor{}, "", err
	}
	a := actorFrom(r.Context())
	if err := peopleOnly(a); err != nil {
		return nil, audit.Actor{}, "", err
	}
	return t, audit.Actor{Kind: "user", ID: a.ID, Role: string(a.Role)}, a.OrgID, nil
}

type teamView struct {
	Members []org.Member `json:"members"`
}

func (s *Server) listTeam(w http.ResponseWriter, r *http.Request) error {
	t, _, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	ms, err := t.Members(r.Context(), orgID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, teamView{Members: ms})
	return nil
}

type inviteBody struct {
	Email string     `json:"email"`
	Role  store.Role `json:"role"`
}

type inviteView struct {
	Link      string    `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
	Mailed    bool      `json:"mailed"`
}

func (s *Server) invite(w http.ResponseWriter, r *http.Request) error {
	t, by, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	var b inviteBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	inv, err := t.Invite(r.Context(), by, orgID, b.Email, b.Role)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store") // the link is a credential
	writeJSON(w, http.StatusCreated, inviteView{Link: inv.Link, ExpiresAt: inv.ExpiresAt, Mailed: inv.Mailed})
	return nil
}

type roleBody struct {
	Role store.Role `json:"role"`
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) error {
	t, by, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	var b roleBody
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	if err := t.SetRole(r.Context(), by, orgID, r.PathValue("user_id"), b.Role); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deactivate(w http.ResponseWriter, r *http.Request) error {
	return s.memberSwitch(w, r, (*org.Service).Deactivate)
}

func (s *Server) reactivate(w http.ResponseWriter, r *http.Request) error {
	return s.memberSwitch(w, r, (*org.Service).Reactivate)
}

// memberSwitch runs an admin's action on the person the path names; it answers nothing but success.
func (s *Server) memberSwitch(w http.ResponseWriter, r *http.Request, action func(*org.Service, context.Context, audit.Actor, string, string) error) error {
	t, by, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	if err := action(t, r.Context(), by, orgID, r.PathValue("user_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// publicTeamBody readies a team request that comes before any session (an invite accepted, a password
// forgotten or reset): the team service, sign-in's CSRF rule, and the decoded body.
func publicTeamBody[T any](s *Server, w http.ResponseWriter, r *http.Request) (*org.Service, T, error) {
	var b T
	t, err := s.teamService()
	if err != nil {
		return nil, b, err
	}
	if err := s.checkCSRF(r); err != nil {
		return nil, b, err
	}
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return nil, b, err
	}
	return t, b, nil
}

type acceptBody struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Password string `json:"password"`
}

// acceptInvite creates the invited person; they then sign in with their email and new password.
func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request) error {
	t, b, err := publicTeamBody[acceptBody](s, w, r)
	if err != nil {
		return err
	}
	u, err := t.AcceptInvite(r.Context(), b.Code, b.Name, b.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, meView{OrgID: u.OrgID, UserID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Kind: "user"})
	return nil
}

type forgotBody struct {
	Email string `json:"email"`
}

// forgotPassword always answers 202, whether or not the email has an account.
func (s *Server) forgotPassword(w http.ResponseWriter, r *http.Request) error {
	t, b, err := publicTeamBody[forgotBody](s, w, r)
	if err != nil {
		return err
	}
	if err := t.ForgotPassword(r.Context(), b.Email); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted"})
	return nil
}

type resetBody struct {
	Code     string `json:"code"`
	Password string `json:"password"`
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request) error {
	t, b, err := publicTeamBody[resetBody](s, w, r)
	if err != nil {
		return err
	}
	if err := t.ResetWithCode(r.Context(), b.Code, b.Password); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) error {
	t, _, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	st, err := t.Settings(r.Context(), orgID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) error {
	t, by, orgID, err := s.teamActor(r)
	if err != nil {
		return err
	}
	var b org.Settings
	if err := decodeJSON(w, r, &b, 16<<10); err != nil {
		return err
	}
	if err := t.UpdateSettings(r.Context(), by, orgID, b); err != nil {
		return err
	}
	st, err := t.Settings(r.Context(), orgID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
