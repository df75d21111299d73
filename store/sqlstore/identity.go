package sqlstore

// Identity (issue 13): one-time codes for invites and password resets, organization settings, and
// people's last activity.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ony-ai/ony/store"
)

func (t *orgTx) CreateCode(ctx context.Context, c store.OneTimeCode) error {
	if c.Purpose != store.CodeInvite && c.Purpose != store.CodeReset {
		return fmt.Errorf("store: unknown code purpose %q", c.Purpose)
	}
	_, err := t.exec(ctx, "CreateCode", t.org, c.ID, string(c.Purpose), c.Email, nullString(c.UserID), nullString(string(c.Role)),
		c.Hash, c.CreatedBy, utc(c.CreatedAt), utc(c.ExpiresAt), nullTime(c.UsedAt))
	return err
}

func (t *orgTx) UseCode(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := t.exec(ctx, "UseCode", utc(at), t.org, id, utc(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *orgTx) SupersedeCodes(ctx context.Context, purpose store.CodePurpose, email string, at time.Time) (int, error) {
	res, err := t.exec(ctx, "SupersedeCodes", utc(at), t.org, string(purpose), email)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *orgTx) UpdateOrgSettings(ctx context.Context, stepUpRisks []string, retentionDays int) error {
	if retentionDays < 0 {
		return fmt.Errorf("store: negative retention")
	}
	days := sql.NullInt64{Int64: int64(retentionDays), Valid: retentionDays > 0}
	res, err := t.exec(ctx, "UpdateOrgSettings", strings.Join(stepUpRisks, ","), days, t.org)
	return mustAffect(res, err)
}

func (t *orgTx) TouchUser(ctx context.Context, userID string, at time.Time) error {
	res, err := t.exec(ctx, "TouchUser", utc(at), t.org, userID)
	return mustAffect(res, err)
}

func (t *systemTx) CodeByHash(ctx context.Context, hash []byte) (store.OneTimeCode, error) {
	return scanCode(t.tx.QueryRowContext(ctx, t.s.query("CodeByHash"), hash), t.s)
}

func (t *systemTx) OpenCodeByEmail(ctx context.Context, purpose store.CodePurpose, email string, now time.Time) (store.OneTimeCode, error) {
	return scanCode(t.tx.QueryRowContext(ctx, t.s.query("OpenCodeByEmail"), string(purpose), email, utc(now)), t.s)
}

func scanCode(r scanner, s *Store) (store.OneTimeCode, error) {
	var c store.OneTimeCode
	var purpose string
	var userID, role sql.NullString
	var used sql.NullTime
	if err := r.Scan(&c.OrgID, &c.ID, &purpose, &c.Email, &userID, &role, &c.Hash, &c.CreatedBy, &c.CreatedAt,
		&c.ExpiresAt, &used); err != nil {
		return c, s.mapErr(err)
	}
	c.Purpose, c.UserID, c.Role = store.CodePurpose(purpose), userID.String, store.Role(role.String)
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		c.UsedAt = &u
	}
	return c, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// splitList reads a comma-separated column; empty is an empty list, not one empty element.
func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}
