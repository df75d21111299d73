package audit_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// buildLog gives orgID's log n leaves fast: records queued 1,000 per statement, then sequenced in
// batches.
func buildLog(b testing.TB, s store.Store, l *audit.Log, orgID string, n int) {
	b.Helper()
	for lo := 0; lo < n; lo += 10_000 {
		err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
			var data [][]byte
			for i := lo; i < min(lo+10_000, n); i++ {
				e := event(i)
				e.V, e.At = 1, fixedTime.Add(time.Duration(i)*timeStep)
				d, err := e.Encode(known)
				if err != nil {
					return err
				}
				if data = append(data, d); len(data) == 1000 {
					if err := tx.AuditEnqueue(ctx, time.Now(), data...); err != nil {
						return err
					}
					data = data[:0]
				}
			}
			return tx.AuditEnqueue(ctx, time.Now(), data...)
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Sequence(ctx, s, orgID); err != nil {
			b.Fatal(err)
		}
	}
	if h := head(b, s, orgID); h.Size != int64(n) {
		b.Fatalf("built %d leaves, want %d", h.Size, n)
	}
}

// verifyLeaves is the size of the log BenchmarkVerify checks.
const verifyLeaves = 200_000

// BenchmarkVerify measures how fast Verify recomputes and checks a 200,000-leaf log with a
// checkpoint, on each database, in leaves per second: "verify" is Verify, and "read" only reads the
// pages Verify reads, one reader, checking
// nothing: the most this storage layout allows one reader (BenchmarkVerifyCheck is the other bound,
// the checking without the reads).
func BenchmarkVerify(b *testing.B) {
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org := orgID(b)
			buildLog(b, s, l, org, verifyLeaves)
			checkpoint(b, s, l, org)
			for _, path := range []string{"verify", "read"} {
				b.Run(path, func(b *testing.B) {
					cpu0 := cpuTime()
					for b.Loop() {
						if path == "read" {
							if err := readOnly(s, org, verifyLeaves); err != nil {
								b.Fatal(err)
							}
							continue
						}
						rep, err := l.Verify(ctx, s, org)
						if err != nil || !rep.OK() || rep.Size != verifyLeaves {
							b.Fatalf("verify: %+v, %v", rep, err)
						}
					}
					b.ReportMetric(float64(verifyLeaves)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
					// This process's CPU per leaf (on SQLite all the work; on PostgreSQL the server's is not in
					// it): the rate a shared, loaded machine allows says less than this.
					b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(verifyLeaves*b.N), "cpu-ns/leaf")
				})
			}
		})
	}
}

// BenchmarkVerifyOrg is BenchmarkVerify with the cross-check against the handoffs: 5,000 handoffs,
// each created and expired, make the 10,000 leaves.
func BenchmarkVerifyOrg(b *testing.B) {
	const n = 10_000
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org, dev := uuid.NewString(), uuid.NewString()
			err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
				now := time.Now()
				if err := tx.CreateOrg(ctx, store.Org{ID: org, Name: "bench", MaxTimeout: time.Hour, CreatedAt: now}); err != nil {
					return err
				}
				if err := tx.CreateDevice(ctx, store.Device{ID: dev, Name: "agent", TokenHash: []byte(dev), CallbackKey: []byte(dev), CreatedAt: now}); err != nil {
					return err
				}
				for i := 0; i < n/2; i++ {
					h := storetest.NewHandoff(org, dev)
					if err := tx.InsertHandoff(ctx, h); err != nil {
						return err
					}
					if _, err := tx.FinishHandoff(ctx, h.ID, store.StatusExpired, store.Decision{ByKind: store.ActorSystem, ByID: "expiry", Channel: "system", DecidedAt: now}); err != nil {
						return err
					}
					for _, e := range []audit.Event{
						{Type: audit.HandoffCreated, Actor: audit.Actor{Kind: "device", ID: dev}, Channel: "api"},
						{Type: audit.HandoffExpired, Actor: audit.Actor{Kind: "system", ID: "expiry"}, Channel: "system", Outcome: "expired"},
					} {
						e.Subject = audit.Subject{Kind: "handoff", ID: h.ID}
						if err := l.Append(ctx, tx, e); err != nil {
							return err
						}
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			checkpoint(b, s, l, org)
			for b.Loop() {
				rep, err := l.VerifyOrg(ctx, s, org)
				if err != nil || !rep.OK() || rep.Size != n {
					b.Fatalf("verify: %+v, %v", rep, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
		})
	}
}

// legacyAppend is the append of before issue 12, kept here only as the benchmarks' baseline: in the
// caller's transaction it locks the head, reads the hashes tlog needs (up to two queries), writes the
// leaf, its hashes and the head. (It writes the hashes in one statement where it used to write one
// each, so the baseline is, if anything, flattered.)
func legacyAppend(tx store.OrgTx, l *audit.Log, e audit.Event) error {
	e.V, e.At = 1, time.Now()
	data, err := e.Encode(known)
	if err != nil {
		return err
	}
	empty, _ := tlog.TreeHash(0, nil)
	head, err := tx.AuditLockHead(ctx, empty[:])
	if err != nil {
		return err
	}
	pending := map[int64]tlog.Hash{}
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var need []int64
		for _, i := range idx {
			if _, ok := pending[i]; !ok {
				need = append(need, i)
			}
		}
		got, err := tileHashes(tx, need)
		if err != nil {
			return nil, err
		}
		for j, i := range idx {
			if h, ok := pending[i]; ok {
				out[j] = h
				continue
			}
			out[j] = got[0]
			got = got[1:]
		}
		return out, nil
	})
	n := head.Size
	hashes, err := tlog.StoredHashes(n, data, r)
	if err != nil {
		return err
	}
	start := tlog.StoredHashIndex(0, n)
	var tiles []store.AuditTile
	for i, h := range hashes {
		pending[start+int64(i)] = h
		if i%store.AuditTileHeight == 0 {
			pos := n >> i
			tiles = append(tiles, store.AuditTile{Level: i / store.AuditTileHeight, Index: pos / store.AuditTileWidth,
				Start: int(pos % store.AuditTileWidth), Data: h[:]})
		}
	}
	root, err := tlog.TreeHash(n+1, r)
	if err != nil {
		return err
	}
	return tx.AuditSequence(ctx, store.AuditBatch{From: n, Leaves: []store.AuditLeaf{{Index: n, Data: data}},
		Tiles: tiles, Head: store.AuditHead{Size: n + 1, Root: root[:], UpdatedAt: time.Now()}})
}

// tileHashes reads stored hashes from their tiles (what the audit package does for proofs).
func tileHashes(tx store.OrgTx, idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for j, x := range idx {
		t := tlog.TileForIndex(store.AuditTileHeight, x)
		got, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: t.L, Index: t.N}})
		if err != nil {
			return nil, err
		}
		if len(got) != 1 || len(got[0].Data) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("stored hash %d: %w", x, store.ErrNotFound)
		}
		if out[j], err = tlog.HashFromTile(t, got[0].Data, x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BenchmarkAppend measures appends per second to one organization from 8 goroutines at once, each in
// a transaction of its own as the application does it: "legacy" is the old append under the head lock
// (see legacyAppend), "queue" is Append (one insert, no lock) with a sequencer running as in `ony serve`.
func BenchmarkAppend(b *testing.B) {
	for _, dialect := range testdb.Dialects {
		for _, path := range []string{"legacy", "queue"} {
			b.Run(dialect+"/"+path, func(b *testing.B) {
				s := openStore(b, dialect)
				l := newLog(b)
				org := orgID(b)
				if path == "queue" {
					c, cancel := context.WithCancel(ctx)
					done := make(chan error, 1)
					go func() { done <- audit.NewSequencer(l, s, testdb.Discard).Run(c) }()
					defer func() { cancel(); <-done }()
				}
				b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
				var i atomic.Int64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						e := event(int(i.Add(1)))
						err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
							if path == "legacy" {
								return legacyAppend(tx, l, e)
							}
							return l.Append(ctx, tx, e)
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
				b.StopTimer()
				verifyOK(b, s, l, org, i.Load())
			})
		}
	}
}

// BenchmarkSequence measures the sequencer's cost per leaf in batches of 1,000 (the queueing is not
// timed). Compare with BenchmarkAppend's legacy path, which did this work once per leaf under the lock.
func BenchmarkSequence(b *testing.B) {
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org := orgID(b)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
					data := make([][]byte, 1000)
					for k := range data {
						e := event(i*1000 + k)
						e.V, e.At = 1, fixedTime
						var err error
						if data[k], err = e.Encode(known); err != nil {
							return err
						}
					}
					return tx.AuditEnqueue(ctx, time.Now(), data...)
				})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if n, err := l.Sequence(ctx, s, org); err != nil || n != 1000 {
					b.Fatalf("sequence: %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "leaves/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/leaf")
		})
	}
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readOnly reads orgID's first n leaves and their stored hashes in Verify's pages, each in a read
// transaction of its own, and checks nothing.
func readOnly(s store.Store, orgID string, n int64) error {
	page := int64(audit.VerifyPageFor(n))
	var p store.AuditPage
	for from := int64(0); from < n; from += page {
		to := min(from+page, n)
		err := s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
			return tx.AuditReadPage(ctx, from, int(to-from), &p)
		})
		if err != nil {
			return err
		}
		if int64(len(p.Index)) != to-from || len(p.Tiles) == 0 {
			return fmt.Errorf("page at %d: %d leaves and %d tiles, want %d leaves", from, len(p.Index), len(p.Tiles), to-from)
		}
	}
	return nil
}
