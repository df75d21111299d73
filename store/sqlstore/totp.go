package sqlstore

// TOTP secrets, session management and login challenges (issue 13, totp helper).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"time"

	"github.com/ony-ai/ony/store"
)

// newPublicID names a session in lists; random, unrelated to the session's secret.
func newPublicID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func scanSession(r scanner, s *Store) (store.Session, error) {
	var ss store.Session
	var seen sql.NullTime
	var pub sql.NullString
	if err := r.Scan(&ss.OrgID, &ss.IDHash, &ss.UserID, &ss.CreatedAt, &ss.ExpiresAt, &pub, &seen, &ss.UserAgent); err != nil {
		return ss, s.mapErr(err)
	}
	ss.CreatedAt, ss.ExpiresAt, ss.PublicID = ss.CreatedAt.UTC(), ss.ExpiresAt.UTC(), pub.String
	ss.LastSeenAt = ss.CreatedAt
	if seen.Valid {
		ss.LastSeenAt = seen.Time.UTC()
	}
	return ss, nil
}

func (t *orgTx) UserSessions(ctx context.Context, userID string) ([]store.Session, error) {
	return scanRows(ctx, t, "UserSessions", scanSession, t.org, userID)
}

func (t *orgTx) DeleteUserSession(ctx context.Context, userID, publicID string) error {
	res, err := t.exec(ctx, "DeleteUserSession", t.org, userID, publicID)
	return mustAffect(res, err)
}

func (t *orgTx) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	res, err := t.exec(ctx, "TouchSession", utc(at), t.org, idHash)
	return mustAffect(res, err)
}

func scanTOTP(r scanner, s *Store) (store.UserTOTP, error) {
	var u store.UserTOTP
	var confirmed sql.NullTime
	if err := r.Scan(&u.OrgID, &u.UserID, &u.Secret, &confirmed, &u.LastStep, &u.CreatedAt); err != nil {
		return u, s.mapErr(err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if confirmed.Valid {
		c := confirmed.Time.UTC()
		u.ConfirmedAt = &c
	}
	return u, nil
}

func (t *orgTx) UserTOTP(ctx context.Context, userID string) (store.UserTOTP, error) {
	return scanTOTP(t.tx.QueryRowContext(ctx, t.s.query("UserTOTP"), t.org, userID), t.s)
}

func (t *orgTx) ListUserTOTP(ctx context.Context) ([]store.UserTOTP, error) {
	return scanRows(ctx, t, "ListUserTOTP", scanTOTP, t.org)
}

func (t *orgTx) PutPendingTOTP(ctx context.Context, u store.UserTOTP) error {
	res, err := t.exec(ctx, "PutPendingTOTP", t.org, u.UserID, u.Secret, utc(u.CreatedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return store.ErrConflict // a confirmed secret is in place
	}
	return nil
}

func (t *orgTx) ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) (bool, error) {
	return affected(t.exec(ctx, "ConfirmTOTP", utc(at), step, t.org, userID, step))
}

func (t *orgTx) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	return affected(t.exec(ctx, "UseTOTPStep", step, t.org, userID, step))
}

func (t *orgTx) SetTOTPSecret(ctx context.Context, userID string, secret []byte) error {
	res, err := t.exec(ctx, "SetTOTPSecret", secret, t.org, userID)
	return mustAffect(res, err)
}

func (t *orgTx) DeleteUserTOTP(ctx context.Context, userID string) error {
	_, err := t.exec(ctx, "DeleteUserTOTP", t.org, userID)
	return err
}

func (t *orgTx) CreateLoginChallenge(ctx context.Context, c store.LoginChallenge) error {
	_, err := t.exec(ctx, "CreateLoginChallenge", t.org, c.IDHash, c.UserID, utc(c.ExpiresAt), c.Attempts)
	return err
}

func (t *orgTx) CountChallengeAttempt(ctx context.Context, idHash []byte, max int) (bool, error) {
	return affected(t.exec(ctx, "CountChallengeAttempt", t.org, idHash, max))
}

func (t *orgTx) DeleteLoginChallenge(ctx context.Context, idHash []byte) error {
	_, err := t.exec(ctx, "DeleteLoginChallenge", t.org, idHash)
	return err
}

func (t *systemTx) LoginChallengeByHash(ctx context.Context, idHash []byte) (store.LoginChallenge, error) {
	var c store.LoginChallenge
	err := t.tx.QueryRowContext(ctx, t.s.query("LoginChallengeByHash"), idHash).
		Scan(&c.OrgID, &c.IDHash, &c.UserID, &c.ExpiresAt, &c.Attempts)
	c.ExpiresAt = c.ExpiresAt.UTC()
	return c, t.s.mapErr(err)
}

func (t *systemTx) DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error) {
	res, err := t.tx.ExecContext(ctx, t.s.query("DeleteExpiredChallenges"), utc(now))
	if err != nil {
		return 0, t.s.mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// affected reports whether a conditional write changed a row.
func affected(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
