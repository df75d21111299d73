package org

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// PasswordReset is what ResetPassword did: the new password when it generated one (shown once), and
// how many of the person's sessions it ended.
type PasswordReset struct {
	UserID        string
	Password      string
	SessionsEnded int
}

// ResetPassword gives the person with email in orgID a new password — pw, or a generated one when pw
// is empty — and ends all their sessions, recording member.password_reset in the same transaction. It
// is how an administrator lets back in someone who lost their password, or locks out whoever learnt it.
func (sv Service) ResetPassword(ctx context.Context, by audit.Actor, orgID, email, pw string) (PasswordReset, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return PasswordReset{}, errOrgNotFound()
	}
	addr, err := NormalizeEmail(email)
	if err != nil {
		return PasswordReset{}, errUserNotFound()
	}
	var out PasswordReset
	if pw == "" {
		if pw, err = auth.GeneratePassword(); err != nil {
			return PasswordReset{}, err
		}
		out.Password = pw
	} else if err := auth.CheckPasswordPolicy(pw); err != nil {
		return PasswordReset{}, problem.New(problem.Invalid, "weak_password", "%s", err.Error())
	}
	// Find the person before paying for a hash; the transaction below looks again.
	find := func(tx store.OrgTx) (store.User, error) {
		if err := orgExists(ctx, tx); err != nil {
			return store.User{}, err
		}
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return store.User{}, err
		}
		i := slices.IndexFunc(users, func(u store.User) bool { return u.Email == addr })
		if i < 0 {
			return store.User{}, errUserNotFound()
		}
		return users[i], nil
	}
	if err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error { _, err := find(tx); return err }); err != nil {
		return PasswordReset{}, err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return PasswordReset{}, err
	}
	err = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		u, err := find(tx)
		if err != nil {
			return err
		}
		out.UserID = u.ID
		if err := tx.SetPasswordHash(ctx, u.ID, hash); err != nil {
			return err
		}
		if out.SessionsEnded, err = tx.DeleteUserSessions(ctx, u.ID, nil); err != nil {
			return err
		}
		err = sv.Audit.Append(ctx, tx, audit.Event{Type: audit.MemberPasswordReset, At: sv.now(), Actor: by,
			Subject: audit.Subject{Kind: "user", ID: u.ID}, Channel: "system"})
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return PasswordReset{}, errUserNotFound()
	}
	if err != nil {
		return PasswordReset{}, err
	}
	return out, nil
}
