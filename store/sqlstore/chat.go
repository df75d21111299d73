package sqlstore

// Chat (issue 14): the person behind a chat account, and the codes that link one.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ony-ai/ony/store"
)

func (t *orgTx) UserByContact(ctx context.Context, kind, address string) (store.User, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("UserByContact"), t.org, kind, address)
	if err != nil {
		return store.User{}, t.s.mapErr(err)
	}
	var found []store.User
	for rows.Next() {
		u, err := scanUser(rows, t.s)
		if err != nil {
			rows.Close()
			return store.User{}, err
		}
		found = append(found, u)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return store.User{}, t.s.mapErr(err)
	}
	rows.Close()
	switch len(found) {
	case 0:
		return store.User{}, store.ErrNotFound
	case 1:
	default:
		// Two people claiming one chat account: deciding as either would be a guess.
		return store.User{}, fmt.Errorf("store: %d people have this %s contact: %w", len(found), kind, store.ErrConflict)
	}
	u := found[0]
	u.Contacts, err = queryContacts(ctx, t.tx, t.s, "UserContacts", t.org, u.ID)
	return u, err
}

func (t *orgTx) CreateLinkCode(ctx context.Context, c store.LinkCode) error {
	if c.UserID == "" || c.Kind == "" || len(c.Hash) == 0 {
		return fmt.Errorf("store: a link code needs a person, a kind and a hash")
	}
	if _, err := t.exec(ctx, "SupersedeLinkCodes", utc(c.CreatedAt), t.org, c.UserID, c.Kind); err != nil {
		return err
	}
	_, err := t.exec(ctx, "CreateLinkCode", t.org, c.Hash, c.UserID, c.Kind, utc(c.CreatedAt), utc(c.ExpiresAt), nullTime(c.UsedAt))
	return err
}

func (t *orgTx) UseLinkCode(ctx context.Context, hash []byte, at time.Time) (bool, error) {
	res, err := t.exec(ctx, "UseLinkCode", utc(at), t.org, hash, utc(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *systemTx) LinkCodeByHash(ctx context.Context, hash []byte) (store.LinkCode, error) {
	var c store.LinkCode
	var used sql.NullTime
	err := t.tx.QueryRowContext(ctx, t.s.query("LinkCodeByHash"), hash).
		Scan(&c.OrgID, &c.Hash, &c.UserID, &c.Kind, &c.CreatedAt, &c.ExpiresAt, &used)
	if err != nil {
		return store.LinkCode{}, t.s.mapErr(err)
	}
	c.CreatedAt, c.ExpiresAt = c.CreatedAt.UTC(), c.ExpiresAt.UTC()
	if used.Valid {
		u := used.Time.UTC()
		c.UsedAt = &u
	}
	return c, nil
}
