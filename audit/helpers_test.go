package audit_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/postgres"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

var ctx = context.Background()

const instance = "ony-test"

// fixedTime and timeStep date the events of in-memory logs, so their bytes are reproducible.
var fixedTime = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

const timeStep = 1500 * time.Millisecond

// known admits the one reason code the tests use.
func known(r string) bool { return r == "recursive_delete" }

// newKeys returns a fresh signing key in a temporary directory.
func newKeys(t testing.TB) *audit.Keys {
	t.Helper()
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), instance, nil)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func newLog(t testing.TB) *audit.Log {
	t.Helper()
	return audit.New(newKeys(t), instance, known, nil)
}

// event returns a valid, varied event; i makes it distinct from its neighbours.
func event(i int) audit.Event {
	e := audit.Event{
		Type:    audit.HandoffDecided,
		Actor:   audit.Actor{Kind: "user", ID: "u" + strconv.Itoa(i%7), Role: "member"},
		Subject: audit.Subject{Kind: "handoff", ID: "h" + strconv.Itoa(i)},
		Channel: "api", Outcome: "approved",
		Details: &audit.Details{Option: "approve"},
	}
	switch i % 3 {
	case 1:
		e.Type, e.Outcome = audit.HandoffCreated, ""
		e.Actor = audit.Actor{Kind: "device", ID: "d1"}
		e.Details = &audit.Details{Action: "deploy.prod", Risk: "high", Reasons: []string{"recursive_delete"},
			TitleHash: audit.TitleHash(fmt.Sprintf("title %d", i))}
	case 2:
		e.Type, e.Outcome, e.Details = audit.HandoffExpired, "expired", nil
		e.Actor = audit.Actor{Kind: "system", ID: "expiry"}
		e.Channel = "system"
	}
	return e
}

// appendN appends events from..from+n-1 to orgID's log, one transaction each, sequencing after each;
// the log must hold from leaves already, so event i lands at index i.
func appendN(t testing.TB, s store.Store, l *audit.Log, orgID string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error { return l.Append(ctx, tx, event(i)) })
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if k, err := l.Sequence(ctx, s, orgID); err != nil || k != 1 {
			t.Fatalf("sequence after append %d: %d, %v", i, k, err)
		}
		if h := head(t, s, orgID); h.Size != int64(i+1) {
			t.Fatalf("append %d: head size %d", i, h.Size)
		}
	}
}

// appendBulk queues n events in one transaction and sequences them (fast setup for big logs).
func appendBulk(t testing.TB, s store.Store, l *audit.Log, orgID string, from, n int) {
	t.Helper()
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		for i := from; i < from+n; i++ {
			if err := l.Append(ctx, tx, event(i)); err != nil {
				return fmt.Errorf("append %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := l.Sequence(ctx, s, orgID); err != nil || k != n {
		t.Fatalf("sequence %d: %d, %v", n, k, err)
	}
}

// sequencer sequences for the helpers that read the store directly; it has no keys (it signs nothing).
var sequencer = audit.New(nil, instance, known, nil)

func sequence(t testing.TB, s store.Store, orgID string) {
	t.Helper()
	if _, err := sequencer.Sequence(ctx, s, orgID); err != nil {
		t.Fatalf("sequence %s: %v", orgID, err)
	}
}

func head(t testing.TB, s store.Store, orgID string) store.AuditHead {
	t.Helper()
	sequence(t, s, orgID)
	var h store.AuditHead
	if err := s.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { h, err = tx.AuditHead(ctx); return err }); err != nil {
		t.Fatalf("head of %s: %v", orgID, err)
	}
	return h
}

func leaves(t testing.TB, s store.Store, orgID string) []store.AuditLeaf {
	t.Helper()
	sequence(t, s, orgID)
	var out []store.AuditLeaf
	if err := s.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) { out, err = tx.AuditLeaves(ctx, 0, 1<<20); return err }); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkpoint(t testing.TB, s store.Store, l *audit.Log, orgID string) ([]byte, audit.Checkpoint) {
	t.Helper()
	note, err := l.Checkpoint(ctx, s, orgID)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	c, err := audit.OpenCheckpoint(note, l.Keys())
	if err != nil {
		t.Fatalf("open own checkpoint: %v", err)
	}
	return note, c
}

func verifyOK(t testing.TB, s store.Store, l *audit.Log, orgID string, size int64) audit.Report {
	t.Helper()
	rep, err := l.Verify(ctx, s, orgID)
	if err != nil {
		t.Fatalf("verify %s: %v", orgID, err)
	}
	if !rep.OK() || rep.Size != size || rep.BadIndex != -1 {
		t.Fatalf("verify %s: want OK with %d leaves, got %+v", orgID, size, rep)
	}
	return rep
}

// orgID is a fresh organization id; the audit tables need no org row.
func orgID(t testing.TB) string {
	return fmt.Sprintf("org-%s-%d", strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()), time.Now().UnixNano())
}

// rawDB is a connection that can bypass the append-only guards, as a database superuser could.
type rawDB struct {
	dialect string
	conn    *sql.Conn
}

func (r *rawDB) rebind(q string) string {
	if r.dialect != "postgres" {
		return q
	}
	return postgres.Dialect{}.Rebind(q)
}

func (r *rawDB) exec(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	res, err := r.conn.ExecContext(ctx, r.rebind(q), args...)
	if err != nil {
		t.Fatalf("superuser %q: %v", q, err)
	}
	n, _ := res.RowsAffected()
	return n
}

// leaf reads a leaf's stored bytes.
func (r *rawDB) leaf(t testing.TB, org string, idx int64) []byte {
	t.Helper()
	return r.bundle(t, org, idx/store.AuditBundleWidth)[idx%store.AuditBundleWidth]
}

// bundle reads the leaves of bundle k.
func (r *rawDB) bundle(t testing.TB, org string, k int64) [][]byte {
	t.Helper()
	var data []byte
	if err := r.conn.QueryRowContext(ctx, r.rebind(`SELECT data FROM audit_bundles WHERE org_id = ? AND idx = ?`), org, k).Scan(&data); err != nil {
		t.Fatalf("read bundle %d: %v", k, err)
	}
	return storetest.BundleLeaves(t, data)
}

// putBundle rewrites bundle k to hold leaves, or deletes it when there are none.
func (r *rawDB) putBundle(t testing.TB, org string, k int64, leaves [][]byte) {
	t.Helper()
	if len(leaves) == 0 {
		r.exec(t, `DELETE FROM audit_bundles WHERE org_id = ? AND idx = ?`, org, k)
		return
	}
	if n := r.exec(t, `UPDATE audit_bundles SET data = ?, n = ? WHERE org_id = ? AND idx = ?`, storetest.Bundle(leaves), len(leaves), org, k); n != 1 {
		t.Fatalf("rewrote %d bundles", n)
	}
}

// setLeaf overwrites leaf idx's bytes in its bundle.
func (r *rawDB) setLeaf(t testing.TB, org string, idx int64, data []byte) {
	t.Helper()
	k := idx / store.AuditBundleWidth
	b := r.bundle(t, org, k)
	b[idx%store.AuditBundleWidth] = data
	r.putBundle(t, org, k, b)
}

// removeLeaf takes leaf idx out of its bundle; the leaves after it in the bundle move up one place.
func (r *rawDB) removeLeaf(t testing.TB, org string, idx int64) {
	t.Helper()
	k := idx / store.AuditBundleWidth
	b := r.bundle(t, org, k)
	r.putBundle(t, org, k, slices.Delete(b, int(idx%store.AuditBundleWidth), int(idx%store.AuditBundleWidth)+1))
}

// cutLeaves deletes the leaves from index from on and says how many there were.
func (r *rawDB) cutLeaves(t testing.TB, org string, from int64) int {
	t.Helper()
	k := from / store.AuditBundleWidth
	n := 0
	if from%store.AuditBundleWidth > 0 {
		b := r.bundle(t, org, k)
		n += len(b) - int(from%store.AuditBundleWidth)
		r.putBundle(t, org, k, b[:from%store.AuditBundleWidth])
		k++
	}
	var more sql.NullInt64
	if err := r.conn.QueryRowContext(ctx, r.rebind(`SELECT sum(n) FROM audit_bundles WHERE org_id = ? AND idx >= ?`), org, k).Scan(&more); err != nil {
		t.Fatal(err)
	}
	r.exec(t, `DELETE FROM audit_bundles WHERE org_id = ? AND idx >= ?`, org, k)
	return n + int(more.Int64)
}

// openTamperable opens a fresh store of dialect plus a superuser connection to the same database with
// the append-only guards out of the way: on PostgreSQL session_replication_role = replica (triggers do
// not fire; a superuser ignores grants and row-level security), on SQLite the triggers dropped.
func openTamperable(t *testing.T, dialect string) (*sqlstore.Store, *rawDB) {
	t.Helper()
	var s *sqlstore.Store
	var db *sql.DB
	var err error
	switch dialect {
	case "postgres":
		url := testdb.PostgresURL(t)
		s = testdb.OpenURL(t, url)
		db, err = sql.Open("pgx", testdb.SuperuserURL(url))
	case "sqlite":
		path := testdb.SQLitePath(t)
		testdb.SeedSQLite(t, path)
		s, err = sqlite.Open(ctx, path, testdb.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawDB{dialect: dialect, conn: conn}
	switch dialect {
	case "postgres":
		var super bool
		if err := conn.QueryRowContext(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || !super {
			t.Fatalf("tamper connection must be a superuser (super=%v, err=%v)", super, err)
		}
		r.exec(t, `SET session_replication_role = replica`)
	case "sqlite":
		rows, err := conn.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'`)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		rows.Close()
		if len(names) != 9 {
			t.Fatalf("expected 9 audit triggers, found %v", names)
		}
		for _, n := range names {
			r.exec(t, `DROP TRIGGER `+n)
		}
	}
	return s, r
}

// rehash recomputes every stored hash and the head from the stored leaves, as an attacker with the
// database but not the signing key would after rewriting history.
func rehash(t testing.TB, s store.Store, r *rawDB, org string) {
	t.Helper()
	ls := leaves(t, s, org)
	var hashes memHashes
	for i, lf := range ls {
		hs, err := tlog.StoredHashes(int64(i), lf.Data, hashes)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, hs...)
	}
	for _, tl := range tilesOf(hashes, int64(len(ls))) {
		if r.exec(t, `UPDATE audit_tiles SET data = ? WHERE org_id = ? AND level = ? AND idx = ?`, tl.Data, org, tl.Level, tl.Index) == 0 {
			r.exec(t, `INSERT INTO audit_tiles (org_id, level, idx, data) VALUES (?, ?, ?, ?)`, org, tl.Level, tl.Index, tl.Data)
		}
	}
	root, err := tlog.TreeHash(int64(len(ls)), hashes)
	if err != nil {
		t.Fatal(err)
	}
	// The frontier emptied: the sequencer rebuilds it from the rewritten hashes.
	if n := r.exec(t, `UPDATE audit_heads SET root = ?, size = ?, frontier = ? WHERE org_id = ?`, root[:], int64(len(ls)), []byte{}, org); n != 1 {
		t.Fatalf("head update touched %d rows", n)
	}
}

// tilesOf lays out the stored hashes of a tree of size n as the store keeps them: tiles of every
// AuditTileHeight-th level.
func tilesOf(hashes memHashes, n int64) []store.AuditTile {
	var out []store.AuditTile
	for level := 0; n>>(store.AuditTileHeight*level) > 0; level++ {
		for pos := int64(0); pos < n>>(store.AuditTileHeight*level); pos++ {
			if pos%store.AuditTileWidth == 0 {
				out = append(out, store.AuditTile{Level: level, Index: pos / store.AuditTileWidth})
			}
			h := hashes[tlog.StoredHashIndex(store.AuditTileHeight*level, pos)]
			out[len(out)-1].Data = append(out[len(out)-1].Data, h[:]...)
		}
	}
	return out
}

// cutTiles deletes the stored hashes of the leaves from index to on, as a database owner cutting
// the log's tail would: each level's tiles keep the hashes of complete subtrees below to.
func cutTiles(t testing.TB, r *rawDB, org string, to int64) {
	t.Helper()
	for level := 0; level < 8; level++ {
		keep := to >> (store.AuditTileHeight * level)
		idx, n := keep/store.AuditTileWidth, keep%store.AuditTileWidth
		r.exec(t, `DELETE FROM audit_tiles WHERE org_id = ? AND level = ? AND idx > ?`, org, level, idx)
		if n == 0 {
			r.exec(t, `DELETE FROM audit_tiles WHERE org_id = ? AND level = ? AND idx = ?`, org, level, idx)
			continue
		}
		r.exec(t, `UPDATE audit_tiles SET data = substr(data, 1, ?) WHERE org_id = ? AND level = ? AND idx = ?`, n*tlog.HashSize, org, level, idx)
	}
}

// memHashes is an in-memory tlog.HashReader.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, errors.New("hash not stored")
		}
		out[i] = m[x]
	}
	return out, nil
}

// dialects runs fn as a parallel subtest per dialect.
func dialects(t *testing.T, fn func(t *testing.T, dialect string)) {
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

func openStore(t testing.TB, dialect string) *sqlstore.Store {
	t.Helper()
	return testdb.Open(t, dialect)
}
