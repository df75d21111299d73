package session

import (
	"context"
	"errors"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// ChangePassword replaces a signed-in person's password after checking the current one, and ends
// their other sessions: whoever else was signed in as them is signed out. sessionToken is the
// caller's own session id, which stays valid. A wrong current password counts against the same
// sign-in limits as a failed login, so a stolen session cannot be used to guess it. It returns how
// many other sessions ended; the audit log records member.password_changed in the same transaction.
func (s *Service) ChangePassword(ctx context.Context, p Principal, sessionToken, current, next, clientAddr string) (int, error) {
	if p.Kind != store.ActorUser || auth.ParseToken(sessionToken, auth.SessionIDPrefix) != nil {
		return 0, problem.New(problem.Invalid, "not_a_session", "only a signed-in person can change their password")
	}
	if current == "" || next == "" {
		return 0, problem.New(problem.Invalid, "invalid_password_change", "current_password and new_password are required")
	}
	if err := auth.CheckPasswordPolicy(next); err != nil {
		return 0, problem.New(problem.Invalid, "weak_password", "%s", err.Error())
	}
	if next == current {
		return 0, problem.New(problem.Invalid, "same_password", "the new password is the current one")
	}
	var u store.User
	if err := s.store.InOrg(ctx, p.OrgID, func(tx store.OrgTx) (err error) { u, err = tx.UserByID(ctx, p.ID); return err }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return 0, errSessionExpired()
		}
		return 0, err
	}
	limits := s.loginLimits(u.Email, clientAddr)
	if err := s.throttled(ctx, limits); err != nil {
		return 0, err
	}
	if ok, err := auth.VerifyPassword(u.PasswordHash, current); err != nil || !ok {
		if err := s.failed(ctx, limits); err != nil {
			return 0, err
		}
		s.log.InfoContext(ctx, "password change refused: wrong current password", "org", p.OrgID, "user", p.ID, "addr", clientAddr)
		return 0, problem.New(problem.Forbidden, "wrong_password", "the current password is wrong")
	}
	_ = s.coord.Reset(ctx, limits[0].key) // as after a good login: the address bucket stays
	hash, err := auth.HashPassword(next)
	if err != nil {
		return 0, err
	}
	var ended int
	err = s.store.InOrg(ctx, p.OrgID, func(tx store.OrgTx) error {
		if err := tx.SetPasswordHash(ctx, p.ID, hash); err != nil {
			return err
		}
		var err error
		if ended, err = tx.DeleteUserSessions(ctx, p.ID, auth.HashToken(sessionToken)); err != nil {
			return err
		}
		err = s.audit.Append(ctx, tx, audit.Event{Type: audit.MemberPasswordChanged, At: s.now().UTC(),
			Actor:   audit.Actor{Kind: "user", ID: p.ID, Role: string(p.Role)},
			Subject: audit.Subject{Kind: "user", ID: p.ID}, Channel: "api"})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return 0, errSessionExpired()
	}
	if err != nil {
		return 0, err
	}
	s.log.InfoContext(ctx, "password changed", "org", p.OrgID, "user", p.ID, "sessions_ended", ended)
	return ended, nil
}
