package audit_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store/sqlstore"
)

const tamperSize = 20

// tamperCase rewrites history as a database superuser would, then states what Verify must report.
type tamperCase struct {
	name   string
	tamper func(t *testing.T, s *sqlstore.Store, r *rawDB, org string)
	// bad is the BadIndex Verify must name; -2 means any, as long as the report is not OK.
	bad int64
}

var tamperCases = []tamperCase{
	{"untampered", func(*testing.T, *sqlstore.Store, *rawDB, string) {}, -1},
	{"flip a byte of leaf 7", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		data := r.leaf(t, org, 7)
		i := bytes.Index(data, []byte(`"h7"`)) + 2
		data[i] = '8' // still valid JSON, still a valid event: only the hash can tell
		if _, err := audit.Decode(data); err != nil {
			t.Fatal(err)
		}
		r.setLeaf(t, org, 7, data)
	}, 7},
	{"delete leaf 11", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		r.removeLeaf(t, org, 11)
	}, 11},
	{"truncate the tail from 15", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		if n := r.cutLeaves(t, org, 15); n != 5 {
			t.Fatalf("deleted %d leaves", n)
		}
		cutTiles(t, r, org, 15)
	}, 15},
	{"swap leaves 3 and 4", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		a, b := r.leaf(t, org, 3), r.leaf(t, org, 4)
		r.setLeaf(t, org, 3, b)
		r.setLeaf(t, org, 4, a)
	}, 3},
	{"replace the head root", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		root := bytes.Repeat([]byte{0xab}, 32)
		if n := r.exec(t, `UPDATE audit_heads SET root = ? WHERE org_id = ?`, root, org); n != 1 {
			t.Fatalf("updated %d heads", n)
		}
	}, -2},
	{"shrink the head", func(t *testing.T, s *sqlstore.Store, r *rawDB, org string) {
		var hs memHashes
		for i, lf := range leaves(t, s, org)[:12] {
			x, _ := tlog.StoredHashes(int64(i), lf.Data, hs)
			hs = append(hs, x...)
		}
		root, _ := tlog.TreeHash(12, hs)
		r.exec(t, `UPDATE audit_heads SET size = 12, root = ? WHERE org_id = ?`, root[:], org)
	}, 12},
	{"corrupt a stored hash", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		// Leaf 9's hash is the tenth in the first tile; the interior hashes are computed from the tile.
		var data []byte
		if err := r.conn.QueryRowContext(ctx, r.rebind(`SELECT data FROM audit_tiles WHERE org_id = ? AND level = 0 AND idx = 0`), org).Scan(&data); err != nil {
			t.Fatal(err)
		}
		data[9*tlog.HashSize] ^= 1
		if n := r.exec(t, `UPDATE audit_tiles SET data = ? WHERE org_id = ? AND level = 0 AND idx = 0`, data, org); n != 1 {
			t.Fatalf("updated %d tiles", n)
		}
	}, 9},
	{"cut the tile short", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		cutTiles(t, r, org, 12)
	}, 12},
	{"delete the tile", func(t *testing.T, _ *sqlstore.Store, r *rawDB, org string) {
		if n := r.exec(t, `DELETE FROM audit_tiles WHERE org_id = ?`, org); n != 1 {
			t.Fatalf("deleted %d tiles", n)
		}
	}, 0},
	{"rewrite leaf 5 and recompute every hash and the head", func(t *testing.T, s *sqlstore.Store, r *rawDB, org string) {
		forged := event(5)
		forged.V, forged.Outcome = 1, "denied"
		forged.At = mustDecode(t, r.leaf(t, org, 5)).At
		data, err := forged.Encode(known)
		if err != nil {
			t.Fatal(err)
		}
		r.setLeaf(t, org, 5, data)
		rehash(t, s, r, org)
	}, -2},
}

// TestTamperDetected builds a 20-leaf log with a signed checkpoint on a fresh database per case, rewrites
// it as a superuser past the append-only guards, and requires Verify to name the first bad leaf.
func TestTamperDetected(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		for _, tc := range tamperCases {
			t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				t.Parallel()
				s, r := openTamperable(t, dialect)
				l := newLog(t)
				org := orgID(t)
				appendN(t, s, l, org, 0, tamperSize)
				_, c := checkpoint(t, s, l, org)
				if c.Size != tamperSize {
					t.Fatalf("checkpoint size %d", c.Size)
				}
				verifyOK(t, s, l, org, tamperSize)

				tc.tamper(t, s, r, org)
				rep, err := l.Verify(ctx, s, org)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				t.Logf("report: %+v", rep)
				switch tc.bad {
				case -1:
					if !rep.OK() || rep.Size != tamperSize || rep.CheckpointSize != tamperSize || rep.BadIndex != -1 ||
						rep.Origin != l.Origin(org) || rep.Root != rootB64(c.Root) {
						t.Fatalf("untampered log: %+v", rep)
					}
				case -2:
					if rep.OK() {
						t.Fatalf("tampering not detected: %+v", rep)
					}
				default:
					if rep.OK() || rep.BadIndex != tc.bad {
						t.Fatalf("want BadIndex %d, got %+v", tc.bad, rep)
					}
				}
			})
		}
	})
}

// TestTamperThenGrowDetected rewrites leaf 5 and recomputes every stored hash and the head — history the
// latest signed checkpoint (size 20) contradicts — and then lets the application carry on: one more
// decision is appended and the periodic job asks for a checkpoint. The log must not end up verifying as
// OK: Checkpoint must refuse to sign a head that is not an extension of the last signed checkpoint, or
// Verify must check every stored checkpoint, not only the newest.
func TestTamperThenGrowDetected(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s, r := openTamperable(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendN(t, s, l, org, 0, tamperSize)
		oldNote, _ := checkpoint(t, s, l, org)

		forged := event(5)
		forged.V, forged.Outcome = 1, "denied"
		forged.At = mustDecode(t, r.leaf(t, org, 5)).At
		data, err := forged.Encode(known)
		if err != nil {
			t.Fatal(err)
		}
		r.setLeaf(t, org, 5, data)
		rehash(t, s, r, org)
		if rep, err := l.Verify(ctx, s, org); err != nil || rep.OK() {
			t.Fatalf("rewrite not detected before growth: %+v, %v", rep, err)
		}

		appendN(t, s, l, org, tamperSize, 1) // the application keeps going
		_, cpErr := l.Checkpoint(ctx, s, org)
		rep, err := l.Verify(ctx, s, org)
		if err != nil {
			t.Fatal(err)
		}
		if cpErr == nil && rep.OK() {
			t.Errorf("history rewritten under checkpoint %d was signed over and now verifies: %+v", tamperSize, rep)
		}
		// A witness that kept the old checkpoint does catch it through the export.
		var buf bytes.Buffer
		if err := l.Export(ctx, s, org, &buf); err == nil {
			if rep, err := audit.VerifyExport(buf.Bytes(), l.Keys(), oldNote); err == nil && rep.OK() {
				t.Errorf("export verified against the pre-tamper checkpoint: %+v", rep)
			}
		}
	})
}

// TestCheckpointRefusesRollback truncates the log to 15 leaves, with a consistent head, after a checkpoint
// of 20 was signed. The signer must not then sign the shorter tree: a signed checkpoint of 15 leaves
// under the same origin is a rollback it would be vouching for, and Export would hand it to auditors.
// Verify still reports the truncation (the size-20 checkpoint stays the newest), but the signer should
// not produce evidence for it.
func TestCheckpointRefusesRollback(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s, r := openTamperable(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendN(t, s, l, org, 0, tamperSize)
		checkpoint(t, s, l, org)
		r.cutLeaves(t, org, 15)
		cutTiles(t, r, org, 15)
		rehash(t, s, r, org)
		if rep, err := l.Verify(ctx, s, org); err != nil || rep.OK() {
			t.Fatalf("truncation not detected: %+v, %v", rep, err)
		}
		note, err := l.Checkpoint(ctx, s, org)
		if err == nil {
			c, err := audit.OpenCheckpoint(note, l.Keys())
			if err != nil {
				t.Fatal(err)
			}
			if c.Size < tamperSize {
				t.Errorf("after signing %d leaves, the signer signed a rollback to %d", tamperSize, c.Size)
			}
		}
	})
}

func mustDecode(t *testing.T, data []byte) audit.Event {
	t.Helper()
	e, err := audit.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func rootB64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
