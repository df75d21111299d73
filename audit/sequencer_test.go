package audit_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// rawHead reads the head as stored, without sequencing first.
func rawHead(t testing.TB, s store.Store, org string) (h store.AuditHead) {
	t.Helper()
	err := s.InOrg(ctx, org, func(tx store.OrgTx) (err error) { h, err = tx.AuditHead(ctx); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return h
}

// waitSize waits until the sequencers (not a reader) have brought org's log to size n.
func waitSize(t *testing.T, s store.Store, org string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for rawHead(t, s, org).Size < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: head at %d after 30s, want %d", org, rawHead(t, s, org).Size, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runSequencer(t *testing.T, q *audit.Sequencer) {
	t.Helper()
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- q.Run(c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sequencer: %v", err)
		}
	})
}

// TestTwoSequencers: many goroutines append to one org through two replicas' logs while each replica
// runs its sequencer. The sequencers alone bring every event into the log exactly once, with dense
// indexes; the log verifies and a checkpoint signs it.
func TestTwoSequencers(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		keys := newKeys(t)
		l1, l2 := audit.New(keys, instance, known, nil), audit.New(keys, instance, known, nil)
		for _, l := range []*audit.Log{l1, l2} {
			q := audit.NewSequencer(l, s, testdb.Discard)
			q.Linger = time.Millisecond
			runSequencer(t, q)
		}
		org := orgID(t)
		const n = 200
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := g; i < n; i += 8 {
					l := []*audit.Log{l1, l2}[i%2]
					if err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return l.Append(ctx, tx, event(i)) }); err != nil {
						t.Errorf("append %d: %v", i, err)
					}
				}
			}()
		}
		wg.Wait()
		waitSize(t, s, org, n)
		exactlyOnce(t, s, org, n)
		_, c := checkpoint(t, s, l2, org)
		if c.Size != n {
			t.Fatalf("checkpoint size %d, want %d", c.Size, n)
		}
		verifyOK(t, s, l1, org, n)
	})
}

// TestSweepSequencesLeftovers: records queued by a replica that died before sequencing them are
// sequenced by another replica's sweep, which was never told of them.
func TestSweepSequencesLeftovers(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		keys := newKeys(t)
		dead := audit.New(keys, instance, known, nil)
		a, b := orgID(t)+"-a", orgID(t)+"-b"
		for i := 0; i < 5; i++ {
			for _, org := range []string{a, b} {
				if err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return dead.Append(ctx, tx, event(i)) }); err != nil {
					t.Fatal(err)
				}
			}
		}
		if rawHead(t, s, a).Size != 0 {
			t.Fatal("appends were sequenced without a sequencer")
		}
		q := audit.NewSequencer(audit.New(keys, instance, known, nil), s, slog.New(slog.DiscardHandler))
		q.Sweep = 20 * time.Millisecond
		runSequencer(t, q)
		waitSize(t, s, a, 5)
		waitSize(t, s, b, 5)
		exactlyOnce(t, s, a, 5)
		exactlyOnce(t, s, b, 5)
	})
}

// TestReadersSeeCommittedAppends: with no sequencer running, every reader entry point sees an append
// as soon as it committed.
func TestReadersSeeCommittedAppends(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		org := orgID(t)
		for i, read := range []func(l *audit.Log) (int64, error){
			func(l *audit.Log) (int64, error) { _, c := checkpoint(t, s, l, org); return c.Size, nil },
			func(l *audit.Log) (int64, error) { rep, err := l.Verify(ctx, s, org); return rep.Size, err },
			func(l *audit.Log) (int64, error) {
				ls, err := l.Leaves(ctx, s, org, 0, 100)
				return int64(len(ls)), err
			},
			func(l *audit.Log) (int64, error) { p, err := l.ProveInclusion(ctx, s, org, 0, 0); return p.Size, err },
			func(l *audit.Log) (int64, error) { p, err := l.ProveConsistency(ctx, s, org, 1, 0); return p.New, err },
		} {
			l := newLog(t)
			if err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return l.Append(ctx, tx, event(i)) }); err != nil {
				t.Fatal(err)
			}
			if got, err := read(l); err != nil || got != int64(i+1) {
				t.Fatalf("reader %d saw %d leaves (%v), want %d", i, got, err, i+1)
			}
		}
	})
}

// TestSealedLogRefusesAppends: once sealed, Append fails with ErrSealed and queues nothing.
func TestSealedLogRefusesAppends(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendN(t, s, l, org, 0, 2)
		if err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
			if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
				return err
			}
			return tx.AuditSeal(ctx, time.Now())
		}); err != nil {
			t.Fatal(err)
		}
		err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return l.Append(ctx, tx, event(2)) })
		if !errors.Is(err, audit.ErrSealed) {
			t.Fatalf("append to a sealed log: %v, want ErrSealed", err)
		}
		if n := rawCount(t, s, `SELECT count(*) FROM audit_queue WHERE org_id = ?`, org); n != 0 {
			t.Fatalf("%d records queued for a sealed log", n)
		}
	})
}

// TestEraseOrgSequencesQueueFirst: erasure sequences what was queued before it sealed, so the
// tombstone covers it, and leaves no queued record behind.
func TestEraseOrgSequencesQueueFirst(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		a := storetest.NewFixture(t, s, "acme")
		appendN(t, s, l, a.Org.ID, 0, 3)
		for i := 3; i < 5; i++ {
			if err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error { return l.Append(ctx, tx, event(i)) }); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.EraseOrg(ctx, s, a.Org.ID, admin); err != nil {
			t.Fatal(err)
		}
		tomb := mustDecode(t, leaves(t, s, store.InstanceLogID)[0].Data)
		if tomb.Details.Size != 5 {
			t.Errorf("3 sequenced and 2 queued leaves; the tombstone records %d", tomb.Details.Size)
		}
		if n := rawCount(t, s, `SELECT count(*) FROM audit_queue`); n != 0 {
			t.Errorf("%d queued records left after erasure", n)
		}
	})
}

// TestFrontierRebuiltForOldHeads: a head from before frontiers were kept (migration 0010) has an
// empty one; the next batch rebuilds it from the stored hashes and the log keeps verifying.
func TestFrontierRebuiltForOldHeads(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s, raw := openTamperable(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendN(t, s, l, org, 0, 13)
		checkpoint(t, s, l, org)
		if n := raw.exec(t, `UPDATE audit_heads SET frontier = ? WHERE org_id = ?`, []byte{}, org); n != 1 {
			t.Fatalf("cleared %d frontiers", n)
		}
		appendN(t, s, l, org, 13, 6)
		if f := rawHead(t, s, org).Frontier; len(f) != 3*32 { // 19 leaves = subtrees of 16, 2 and 1
			t.Fatalf("frontier of %d bytes after the rebuild, want 3 hashes", len(f))
		}
		checkpoint(t, s, l, org)
		verifyOK(t, s, l, org, 19)
	})
}
