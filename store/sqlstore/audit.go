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
	err := r.Scan(&h.Size, &h.Root, &h.UpdatedAt, &sealed, &h.Frontier)
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

func (t *orgTx) AuditEnqueue(ctx context.Context, at time.Time, data ...[]byte) error {
	switch len(data) {
	case 0:
		return nil
	case 1:
		// The request path: the seal check and the insert in one statement.
		res, err := t.exec(ctx, "AuditEnqueueOne", t.org, data[0], utc(at), t.org)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errors.Join(store.ErrSealed, err)
		}
		return nil
	}
	var sealed int
	if err := t.tx.QueryRowContext(ctx, t.s.query("AuditSealed"), t.org).Scan(&sealed); err != nil {
		return t.s.mapErr(err)
	}
	if sealed > 0 {
		return store.ErrSealed
	}
	args := make([]any, 0, 3*len(data))
	for _, d := range data {
		args = append(args, t.org, d, utc(at))
	}
	_, err := t.tx.ExecContext(ctx, t.s.queryWith("AuditEnqueue", strings.Repeat(", (?, ?, ?)", len(data)-1)), args...)
	return t.s.mapErr(err)
}

func (t *orgTx) AuditQueued(ctx context.Context, afterID int64, limit int) ([]store.AuditQueued, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditQueued"), t.org, afterID, limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.AuditQueued
	for rows.Next() {
		var q store.AuditQueued
		if err := rows.Scan(&q.ID, &q.Data, &q.CreatedAt); err != nil {
			return nil, err
		}
		q.CreatedAt = q.CreatedAt.UTC()
		out = append(out, q)
	}
	return out, t.s.mapErr(rows.Err())
}

// insertChunk bounds the rows of one multi-row statement, well under both databases' limits on
// parameters (SQLite 32,766, PostgreSQL 65,535).
const insertChunk = 1000

func (t *orgTx) AuditSequence(ctx context.Context, b store.AuditBatch) error {
	if b.Head.Size != b.From+int64(len(b.Leaves)) {
		return fmt.Errorf("store: audit head size %d does not follow %d leaves from %d", b.Head.Size, len(b.Leaves), b.From)
	}
	for i, l := range b.Leaves {
		if l.Index != b.From+int64(i) {
			return fmt.Errorf("store: audit leaf %d at position %d of a batch from %d", l.Index, i, b.From)
		}
	}
	for lo := 0; lo < len(b.Leaves); lo += insertChunk {
		part := b.Leaves[lo:min(lo+insertChunk, len(b.Leaves))]
		args := make([]any, 0, 4*len(part))
		for _, l := range part {
			args = append(args, t.org, l.Index, l.Data, utc(l.CreatedAt))
		}
		q := t.s.queryWith("AuditInsertLeaves", strings.Repeat(", (?, ?, ?, ?)", len(part)-1))
		if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: audit leaves from %d: %w", part[0].Index, t.s.mapErr(err))
		}
	}
	if err := t.writeTiles(ctx, b.Tiles); err != nil {
		return err
	}
	frontier := b.Head.Frontier
	if frontier == nil {
		frontier = []byte{} // NOT NULL: empty means "rebuild from stored hashes"
	}
	res, err := t.exec(ctx, "AuditUpdateHead", b.Head.Size, b.Head.Root, frontier, utc(b.Head.UpdatedAt), t.org, b.From)
	if err := mustAffect(res, err); err != nil {
		// The head moved under us: the caller did not hold the lock from AuditLockHead.
		return fmt.Errorf("store: audit head: %w", err)
	}
	for lo := 0; lo < len(b.Dequeue); lo += insertChunk {
		part := b.Dequeue[lo:min(lo+insertChunk, len(b.Dequeue))]
		args := make([]any, 0, 1+len(part))
		args = append(args, t.org)
		for _, id := range part {
			args = append(args, id)
		}
		q := t.s.queryWith("AuditDequeue", strings.Repeat(", ?", len(part)-1)+")")
		res, err := t.tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: audit dequeue: %w", t.s.mapErr(err))
		}
		// A record already gone was sequenced by someone else: this batch would record it twice.
		if n, err := res.RowsAffected(); err != nil || n != int64(len(part)) {
			return fmt.Errorf("store: audit dequeue: %d of %d records were still queued (%v)", n, len(part), err)
		}
	}
	return nil
}

// writeTiles inserts new tiles, several to a statement, and extends partial ones, each by one
// statement that names the length it extends: a tile that is not as long as the sequencer believes is
// an error, not a gap or an overlap.
func (t *orgTx) writeTiles(ctx context.Context, tiles []store.AuditTile) error {
	var fresh []store.AuditTile
	for _, tl := range tiles {
		if len(tl.Data)%32 != 0 || tl.Start < 0 || tl.Start+len(tl.Data)/32 > store.AuditTileWidth {
			return fmt.Errorf("store: audit tile %d/%d: %d bytes from %d", tl.Level, tl.Index, len(tl.Data), tl.Start)
		}
		if tl.Start == 0 {
			fresh = append(fresh, tl)
			continue
		}
		q := t.s.query("AuditExtendTile")
		if t.s.dialect.Name() == "sqlite" {
			// SQLite's || yields text; the bytes are kept, the type is put back.
			q = strings.Replace(q, "data || ?", "CAST(data || ? AS BLOB)", 1)
		}
		res, err := t.tx.ExecContext(ctx, q, tl.Data, t.org, tl.Level, tl.Index, 32*tl.Start)
		if err := mustAffect(res, t.s.mapErr(err)); err != nil {
			return fmt.Errorf("store: audit tile %d/%d from %d: %w", tl.Level, tl.Index, tl.Start, err)
		}
	}
	for lo := 0; lo < len(fresh); lo += insertChunk {
		part := fresh[lo:min(lo+insertChunk, len(fresh))]
		args := make([]any, 0, 4*len(part))
		for _, tl := range part {
			args = append(args, t.org, tl.Level, tl.Index, tl.Data)
		}
		q := t.s.queryWith("AuditInsertTiles", strings.Repeat(", (?, ?, ?, ?)", len(part)-1))
		if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: audit tiles: %w", t.s.mapErr(err))
		}
	}
	return nil
}

// AuditTiles reads the tiles in one query; a proof or a frontier rebuild needs a few of them.
func (t *orgTx) AuditTiles(ctx context.Context, keys []store.AuditTile) ([]store.AuditTile, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+2*len(keys))
	args = append(args, t.org)
	for _, k := range keys {
		args = append(args, k.Level, k.Index)
	}
	rows, err := t.tx.QueryContext(ctx, t.s.queryWith("AuditTilesByKey", strings.Repeat(", (?, ?)", len(keys)-1)+")"), args...)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.AuditTile
	for rows.Next() {
		var tl store.AuditTile
		if err := rows.Scan(&tl.Level, &tl.Index, &tl.Data); err != nil {
			return nil, err
		}
		out = append(out, tl)
	}
	return out, t.s.mapErr(rows.Err())
}

// AuditReadPage reads the leaves as one aggregated row when they are whole (no gap), which is what an
// intact log always is, otherwise row by row, so verification can say which leaf is wrong; and the
// tiles, a few rows per level.
func (t *orgTx) AuditReadPage(ctx context.Context, leafFrom int64, leafLimit int, p *store.AuditPage) error {
	p.Index, p.Data, p.Ends = p.Index[:0], p.Data[:0], p.Ends[:0]
	p.Tiles, p.TileData = p.Tiles[:0], p.TileData[:0]
	ok := false
	var err error
	if !p.Rows {
		if ok, err = t.leafRange(ctx, leafFrom, leafLimit, p); err != nil {
			return err
		}
	}
	if !ok {
		p.Index, p.Data, p.Ends = p.Index[:0], p.Data[:0], p.Ends[:0]
		if err := t.leafRows(ctx, leafFrom, leafLimit, p); err != nil {
			return err
		}
	}
	if leafLimit <= 0 {
		return nil
	}
	// The hashes of level h·L the page's leaves complete are those at positions up to
	// (leafFrom+leafLimit)>>(h·L), from leafFrom>>(h·L).
	end := leafFrom + int64(leafLimit)
	var offs []int
	for level := 0; level < 64/store.AuditTileHeight && end>>(store.AuditTileHeight*level) > 0; level++ {
		shift := store.AuditTileHeight * (level + 1)
		lo, hi := leafFrom>>shift, ((end>>(store.AuditTileHeight*level))-1)>>store.AuditTileHeight
		if err := t.tileRows(ctx, level, lo, max(lo, hi), p, &offs); err != nil {
			return err
		}
	}
	for k := range p.Tiles {
		p.Tiles[k].Data = p.TileData[offs[2*k]:offs[2*k+1]]
	}
	return nil
}

func (t *orgTx) tileRows(ctx context.Context, level int, lo, hi int64, p *store.AuditPage, offs *[]int) error {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditTileRange"), t.org, level, lo, hi)
	if err != nil {
		return t.s.mapErr(err)
	}
	defer rows.Close()
	var idx int64
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&idx, &raw); err != nil {
			return err
		}
		*offs = append(*offs, len(p.TileData))
		p.TileData = append(p.TileData, raw...)
		*offs = append(*offs, len(p.TileData))
		p.Tiles = append(p.Tiles, store.AuditTile{Level: level, Index: idx})
	}
	return t.s.mapErr(rows.Err())
}

func (t *orgTx) leafRange(ctx context.Context, from int64, limit int, p *store.AuditPage) (bool, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditLeafRange"), t.org, from, from+int64(limit))
	if err != nil {
		return false, t.s.mapErr(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return false, t.s.mapErr(rows.Err())
	}
	var data, lens sql.RawBytes
	var n int64
	var lo, hi sql.NullInt64
	if err := rows.Scan(&data, &lens, &n, &lo, &hi); err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	if lo.Int64 != from || hi.Int64-lo.Int64+1 != n {
		return false, nil
	}
	p.Data = append(p.Data, data...)
	end := 0
	for k, l := 0, 0; k < len(lens); k++ {
		c := lens[k]
		if c >= '0' && c <= '9' {
			l = l*10 + int(c-'0')
		}
		if c == ',' || k == len(lens)-1 {
			end += l
			p.Ends, p.Index = append(p.Ends, end), append(p.Index, from+int64(len(p.Ends)))
			l = 0
		}
	}
	if int64(len(p.Ends)) != n || end != len(p.Data) {
		return false, nil
	}
	return true, rows.Err()
}

func (t *orgTx) leafRows(ctx context.Context, from int64, limit int, p *store.AuditPage) error {
	var i int64
	var raw sql.RawBytes
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditLeafData"), t.org, from, limit)
	if err != nil {
		return t.s.mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&i, &raw); err != nil {
			return err
		}
		p.Index, p.Data = append(p.Index, i), append(p.Data, raw...)
		p.Ends = append(p.Ends, len(p.Data))
	}
	return t.s.mapErr(rows.Err())
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

func (t *systemTx) AuditQueuedLogIDs(ctx context.Context) ([]string, error) {
	return t.ids(ctx, "AuditQueuedLogIDs")
}

func (t *systemTx) OrgIDs(ctx context.Context) ([]string, error) { return t.ids(ctx, "OrgIDs") }

// DueHandoffs implements store.SystemTx.
func (t *systemTx) DueHandoffs(ctx context.Context, now time.Time, limit int) ([]store.HandoffRef, error) {
	rows, err := t.tx.QueryContext(ctx, t.s.query("DueHandoffs"), utc(now), limit)
	if err != nil {
		return nil, t.s.mapErr(err)
	}
	defer rows.Close()
	var out []store.HandoffRef
	for rows.Next() {
		var r store.HandoffRef
		if err := rows.Scan(&r.OrgID, &r.ID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, t.s.mapErr(rows.Err())
}

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
//
// Its jobs go too, whatever their state: every job Ony enqueues for an organization names it in
// args.org_id, and a finished job stays in River's table for a day with its arguments and errors, so
// the ids would outlive the erasure, and a pending one (a rung, an expiry) would wake for an
// organization that no longer exists. River's table has no index on the arguments; erasure is rare
// enough for the scan.
func (t *systemTx) EraseOrg(ctx context.Context, orgID string) error {
	if orgID == store.InstanceLogID {
		return errors.New("store: the instance log cannot be erased")
	}
	for _, q := range []string{
		`DELETE FROM river_job WHERE args->>'org_id' = ?`, // ->> reads jsonb on both dialects
		`DELETE FROM idempotency_keys WHERE org_id = ?`,
		`DELETE FROM handoffs WHERE org_id = ?`,
		`DELETE FROM sessions WHERE org_id = ?`,
		`DELETE FROM devices WHERE org_id = ?`,
		`DELETE FROM users WHERE org_id = ?`,
	} {
		if _, err := t.tx.ExecContext(ctx, t.s.dialect.Rebind(q), orgID); err != nil {
			return fmt.Errorf("store: erase org: %w", t.s.mapErr(err))
		}
	}
	if err := t.s.dialect.EraseAudit(ctx, t.tx, orgID); err != nil {
		return fmt.Errorf("store: erase audit log: %w", err)
	}
	res, err := t.tx.ExecContext(ctx, t.s.dialect.Rebind(`DELETE FROM orgs WHERE id = ?`), orgID)
	return mustAffect(res, t.s.mapErr(err))
}
