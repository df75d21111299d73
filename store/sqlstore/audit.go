package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ony-ai/ony/store"
)

func (t *orgTx) AuditLockHead(ctx context.Context, emptyRoot []byte) (store.AuditHead, error) {
	// Every log but a new one has its head: one statement, where making sure of it first was two.
	h, err := scanHead(t.tx.QueryRowContext(ctx, t.s.query("AuditLockHead"), t.org), t.s)
	if !errors.Is(err, store.ErrNotFound) {
		return h, err
	}
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

// queuedOne is the outcome of AuditEnqueueOne, which queues nothing into a sealed log.
func queuedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(store.ErrSealed, err)
	}
	return nil
}

func (t *orgTx) AuditEnqueue(ctx context.Context, at time.Time, data ...[]byte) error {
	switch len(data) {
	case 0:
		return nil
	case 1:
		// The request path: the seal check and the insert in one statement.
		return queuedOne(t.exec(ctx, "AuditEnqueueOne", t.org, data[0], utc(at), t.org))
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
	if err := t.writeBundles(ctx, b.Leaves); err != nil {
		return err
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

// writeBundles stores consecutive leaves in their bundles: the first ones extend the log's last bundle
// if it is partial, by one statement that names how many leaves it held, so a bundle that is not what
// the sequencer believes is an error, not a gap or an overlap; the rest start new bundles, several to
// a statement.
func (t *orgTx) writeBundles(ctx context.Context, leaves []store.AuditLeaf) error {
	const w = store.AuditBundleWidth
	var fresh []any
	rows := 0
	insert := func() error {
		if rows == 0 {
			return nil
		}
		q := t.s.queryWith("AuditInsertBundles", strings.Repeat(", (?, ?, ?, ?)", rows-1))
		if _, err := t.tx.ExecContext(ctx, q, fresh...); err != nil {
			return fmt.Errorf("store: audit bundles: %w", t.s.mapErr(err))
		}
		fresh, rows = fresh[:0], 0
		return nil
	}
	for i := 0; i < len(leaves); {
		k, start := leaves[i].Index/w, int(leaves[i].Index%w)
		end := min(len(leaves), i+w-start)
		var data []byte
		for _, l := range leaves[i:end] {
			data = store.AppendBundleLeaf(data, l.Data)
		}
		if start > 0 {
			res, err := t.tx.ExecContext(ctx, t.extendQuery("AuditExtendBundle"), data, start+end-i, t.org, k, start)
			if err := mustAffect(res, t.s.mapErr(err)); err != nil {
				return fmt.Errorf("store: audit bundle %d from %d: %w", k, start, err)
			}
		} else {
			fresh = append(fresh, t.org, k, end-i, data)
			if rows++; rows == insertChunk {
				if err := insert(); err != nil {
					return err
				}
			}
		}
		i = end
	}
	return insert()
}

// extendQuery is the named query that appends to a row's data (data || ?), in the dialect's terms.
func (t *orgTx) extendQuery(name string) string {
	q := t.s.query(name)
	if t.s.dialect.Name() == "sqlite" {
		// SQLite's || yields text; the bytes are kept, the type is put back.
		q = strings.Replace(q, "data || ?", "CAST(data || ? AS BLOB)", 1)
	}
	return q
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
		res, err := t.tx.ExecContext(ctx, t.extendQuery("AuditExtendTile"), tl.Data, t.org, tl.Level, tl.Index, 32*tl.Start)
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

// AuditReadPage reads the bundles holding the leaves, a row per bundle, and the tiles, a few rows per
// level. A bundle that does not split into at most AuditBundleWidth leaves shows as a leaf of index -1
// where it goes wrong, so verification names the place.
func (t *orgTx) AuditReadPage(ctx context.Context, leafFrom int64, leafLimit int, p *store.AuditPage) error {
	p.Index, p.Data, p.Ends = p.Index[:0], p.Data[:0], p.Ends[:0]
	p.Tiles, p.TileData = p.Tiles[:0], p.TileData[:0]
	if err := t.bundles(ctx, leafFrom, leafLimit, func(i int64, leaf []byte) {
		if len(leaf) > cap(p.Data)-len(p.Data) {
			// To the page's size as the leaves so far foretell it: append's own growth (1.25× for a
			// large slice) would allocate and copy a page's megabytes over and over before the buffer
			// has its size, and fresh memory costs page faults too.
			n := len(p.Index) + 1
			p.Data = slices.Grow(p.Data, max(len(leaf), len(p.Data), (len(p.Data)+len(leaf))/n*(leafLimit-n)*5/4))
		}
		p.Index, p.Data = append(p.Index, i), append(p.Data, leaf...)
		p.Ends = append(p.Ends, len(p.Data))
	}); err != nil {
		return err
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

// bundles calls leaf for each leaf in [from, from+limit), in order, from the bundles that hold them.
// A bundle that goes wrong (bytes that do not split, more than AuditBundleWidth leaves) gives one call
// with index -1 where it does, even past the range, and no more from that bundle.
func (t *orgTx) bundles(ctx context.Context, from int64, limit int, leaf func(i int64, data []byte)) error {
	if limit <= 0 {
		return nil
	}
	const w = store.AuditBundleWidth
	end := from + int64(limit)
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditBundleRange"), t.org, from/w, (end-1)/w)
	if err != nil {
		return t.s.mapErr(err)
	}
	defer rows.Close()
	var k int64
	var raw sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&k, &raw); err != nil {
			return err
		}
		i := k * w
		for rest := []byte(raw); len(rest) > 0; i++ {
			data, r, err := store.NextBundleLeaf(rest)
			if err != nil || i == (k+1)*w {
				leaf(-1, nil)
				break
			}
			if i >= from && i < end {
				leaf(i, data)
			}
			rest = r
		}
	}
	return t.s.mapErr(rows.Err())
}

func (t *orgTx) AuditLeaves(ctx context.Context, from int64, limit int) ([]store.AuditLeaf, error) {
	var out []store.AuditLeaf
	malformed := false
	err := t.bundles(ctx, from, limit, func(i int64, data []byte) {
		malformed = malformed || i < 0
		out = append(out, store.AuditLeaf{Index: i, Data: bytes.Clone(data)})
	})
	if err == nil && malformed {
		err = fmt.Errorf("store: audit log of %s: %w", t.org, store.ErrBundleMalformed)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (t *orgTx) AuditHandoffStates(ctx context.Context, fn func(id string, status store.Status) error) error {
	rows, err := t.tx.QueryContext(ctx, t.s.query("AuditHandoffStates"), t.org)
	if err != nil {
		return t.s.mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var status, ids string
		var n int
		if err := rows.Scan(&status, &n, &ids); err != nil {
			return err
		}
		// Ids are the store's UUIDs; one holding a comma would split wrong, so the count must agree.
		if k := strings.Count(ids, ",") + 1; k != n {
			return fmt.Errorf("store: %d handoffs %s listed as %d ids: an id holds a comma", n, status, k)
		}
		for id := range strings.SplitSeq(ids, ",") {
			if err := fn(id, store.Status(status)); err != nil {
				return err
			}
		}
	}
	return t.s.mapErr(rows.Err())
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
