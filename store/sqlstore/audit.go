package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ony-ai/ony/store"
)

func (t *orgTx) AuditLockHead(ctx context.Context, emptyRoot []byte) (store.AuditHead, error) {
	if _, err := t.exec(ctx, "AuditInitHead", t.org, emptyRoot, utc(time.Now())); err != nil {
		return store.AuditHead{}, err
	}
	return scanHead(t.tx.QueryRowContext(ctx, t.s.query("AuditLockHead"), t.org), t.s)
}

func (t *orgTx) AuditHead(ctx context.Context) (store.AuditHead, error) {
	return scanHead(t.tx.QueryRowContext(ctx, t.s.query("AuditHead"), t.org), t.s)
}

func scanHead(r scanner, s *Store) (store.AuditHead, error) {
	var h store.AuditHead
	var sealed sql.NullTime
	err := r.Scan(&h.Size, &h.Root, &h.UpdatedAt, &sealed)
	h.UpdatedAt, h.Sealed = h.UpdatedAt.UTC(), sealed.Valid
	return h, s.mapErr(err)
}

func (t *orgTx) AuditSeal(ctx context.Context, at time.Time) error {
	_, err := t.exec(ctx, "AuditSeal", utc(at), t.org)
	return err
}

func (t *orgTx) AuditCheckpoints(ctx context.Context, from int64, limit int) ([]store.AuditCheckpoint, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditCheckpoints"), t.org, from, limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		if err := rows.Scan(&c.Size, &c.Note, &c.CreatedAt); err != nil {
			return nil, err
		}
		c.CreatedAt = c.CreatedAt.UTC()
		out = append(out, c)
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) AuditAppend(ctx context.Context, leaf store.AuditLeaf, hashStart int64, hashes [][]byte, head store.AuditHead) error {
	if head.Size != leaf.Index+1 {
		return fmt.Errorf("store: audit head size %d does not follow leaf %d", head.Size, leaf.Index)
	}
	if _, err := t.exec(ctx, "AuditInsertLeaf", t.org, leaf.Index, leaf.Data, utc(leaf.CreatedAt)); err != nil {
		return fmt.Errorf("store: audit leaf %d: %w", leaf.Index, err)
	}
	for i, h := range hashes {
		if _, err := t.exec(ctx, "AuditInsertHash", t.org, hashStart+int64(i), h); err != nil {
			return fmt.Errorf("store: audit hash %d: %w", hashStart+int64(i), err)
		}
	}
	res, err := t.exec(ctx, "AuditUpdateHead", head.Size, head.Root, utc(head.UpdatedAt), t.org, leaf.Index)
	if err := mustAffect(res, err); err != nil {
		// The head moved under us: the caller did not hold the lock from AuditLockHead.
		return fmt.Errorf("store: audit head: %w", err)
	}
	return nil
}

// AuditHashes reads the hashes in one query; an append needs up to 2·log₂(n) of them.
func (t *orgTx) AuditHashes(ctx context.Context, indexes []int64) ([][]byte, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(indexes)+1)
	args = append(args, t.org)
	for _, i := range indexes {
		args = append(args, i)
	}
	q := `SELECT hidx, hash FROM audit_hashes WHERE org_id = ? AND hidx IN (?` + strings.Repeat(", ?", len(indexes)-1) + `)`
	rows, err := t.tx.QueryContext(ctx, t.s.dialect.Rebind(q), args...)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	got := make(map[int64][]byte, len(indexes))
	for rows.Next() {
		var i int64
		var h []byte
		if err := rows.Scan(&i, &h); err != nil {
			return nil, err
		}
		got[i] = h
	}
	if err := rows.Err(); err != nil {
		return nil, t.s.mapErr(err)
	}
	out := make([][]byte, len(indexes))
	for k, i := range indexes {
		h, ok := got[i]
		if !ok {
			return nil, fmt.Errorf("store: audit hash %d: %w", i, store.ErrNotFound)
		}
		out[k] = h
	}
	return out, nil
}

func (t *orgTx) AuditStoredHashes(ctx context.Context, from int64, limit int) ([]int64, [][]byte, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditStoredHashes"), t.org, from, limit)
	if err != nil {
		return nil, nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var idx []int64
	var hs [][]byte
	for rows.Next() {
		var i int64
		var h []byte
		if err := rows.Scan(&i, &h); err != nil {
			return nil, nil, err
		}
		idx, hs = append(idx, i), append(hs, h)
	}
	return idx, hs, t.s.mapErr(rows.Err())
}

func (t *orgTx) AuditLeaves(ctx context.Context, from int64, limit int) ([]store.AuditLeaf, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditLeaves"), t.org, from, limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.AuditLeaf
	for rows.Next() {
		var l store.AuditLeaf
		if err := rows.Scan(&l.Index, &l.Data, &l.CreatedAt); err != nil {
			return nil, err
		}
		l.CreatedAt = l.CreatedAt.UTC()
		out = append(out, l)
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) AuditHandoffStates(ctx context.Context, after string, limit int) ([]store.HandoffState, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditHandoffStates"), t.org, after, limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.HandoffState
	for rows.Next() {
		var h store.HandoffState
		var status string
		var decided sql.NullTime
		if err := rows.Scan(&h.ID, &status, &h.CreatedAt, &decided); err != nil {
			return nil, err
		}
		h.Status, h.CreatedAt = store.Status(status), h.CreatedAt.UTC()
		if decided.Valid {
			at := decided.Time.UTC()
			h.DecidedAt = &at
		}
		out = append(out, h)
	}
	return out, t.s.mapErr(rows.Err())
}

func (t *orgTx) AuditPutCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	_, err := t.exec(ctx, "AuditPutCheckpoint", t.org, c.Size, c.Note, utc(c.CreatedAt))
	return err
}

func (t *orgTx) AuditLatestCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	err := t.tx.QueryRowContext(ctx, t.s.query("AuditLatestCheckpoint"), t.org).Scan(&c.Size, &c.Note, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, t.s.mapErr(err)
}

func (t *systemTx) AuditLogIDs(ctx context.Context) ([]string, error) {
	return t.ids(ctx, "AuditLogIDs")
}

func (t *systemTx) OrgIDs(ctx context.Context) ([]string, error) { return t.ids(ctx, "OrgIDs") }

func (t *systemTx) ids(ctx context.Context, query string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query(query))
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, t.s.mapErr(rows.Err())
}

// EraseOrg deletes the organization (users, devices, sessions, handoffs and keys cascade or are
// deleted here; ladders, escalation sends and decision tokens go by cascade alone, from orgs, handoffs
// and users, which on PostgreSQL runs as the tables' owner, so the runtime role needs no DELETE on them)
// and its audit log through the dialect's erasure path.
func (t *systemTx) EraseOrg(ctx context.Context, orgID string) error {
	if orgID == store.InstanceLogID {
		return errors.New("store: the instance log cannot be erased")
	}
	for _, q := range []string{
		`DELETE FROM idempotency_keys WHERE org_id = ?`,
		`DELETE FROM handoffs WHERE org_id = ?`,
		`DELETE FROM sessions WHERE org_id = ?`,
		`DELETE FROM devices WHERE org_id = ?`,
		`DELETE FROM users WHERE org_id = ?`,
	} {
		if _, err := t.tx.ExecContext(ctx, t.s.dialect.Rebind(q), orgID); err != nil {
			return fmt.Errorf("store: erase org: %w", err)
		}
	}
	if err := t.s.dialect.EraseAudit(ctx, t.tx, orgID); err != nil {
		return fmt.Errorf("store: erase audit log: %w", err)
	}
	res, err := t.tx.ExecContext(ctx, t.s.dialect.Rebind(`DELETE FROM orgs WHERE id = ?`), orgID)
	return mustAffect(res, t.s.mapErr(err))
}
