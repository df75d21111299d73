package audit_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
)

// appendConcurrently starts n goroutines per org that each append one event at once (event i goes
// through logs[i%len(logs)], as if through several replicas).
func appendConcurrently(t *testing.T, s store.Store, logs []*audit.Log, orgs []string, n int) {
	t.Helper()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, org := range orgs {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return logs[i%len(logs)].Append(ctx, tx, event(i)) })
				if err != nil {
					t.Errorf("%s: concurrent append %d: %v", org, i, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
}

// exactlyOnce checks org's log holds leaves 0..n-1, in order, and that they are events 0..n-1 each
// once (by subject), in whatever order they were sequenced.
func exactlyOnce(t *testing.T, s store.Store, org string, n int) {
	t.Helper()
	ls := leaves(t, s, org)
	var subjects []string
	for i, lf := range ls {
		if lf.Index != int64(i) {
			t.Fatalf("%s: leaf %d at position %d: indexes are not dense", org, lf.Index, i)
		}
		subjects = append(subjects, mustDecode(t, lf.Data).Subject.ID)
	}
	if len(ls) != n {
		t.Fatalf("%s: %d leaves, want %d", org, len(ls), n)
	}
	slices.Sort(subjects)
	if len(slices.Compact(subjects)) != n {
		t.Fatalf("%s: %d distinct events among %d leaves", org, len(subjects), n)
	}
}

// TestConcurrentAppends has 50 goroutines append to one org's log at once: every append succeeds, the
// indexes are exactly 0..49, and the log verifies.
func TestConcurrentAppends(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		org := orgID(t)
		appendConcurrently(t, s, []*audit.Log{l}, []string{org}, 50)
		exactlyOnce(t, s, org, 50)
		checkpoint(t, s, l, org)
		rep := verifyOK(t, s, l, org, 50)
		if rep.CheckpointSize != 50 {
			t.Fatalf("checkpoint size %d", rep.CheckpointSize)
		}
	})
}

// TestConcurrentOrgsIndependent has two orgs append at once: each log gets its own contiguous indexes
// from 0, verifies on its own, and holds only its own events.
func TestConcurrentOrgsIndependent(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		a, b := orgID(t)+"-a", orgID(t)+"-b"
		appendConcurrently(t, s, []*audit.Log{l}, []string{a, b}, 25)
		exactlyOnce(t, s, a, 25)
		exactlyOnce(t, s, b, 25)
		// A checkpoint of A says nothing about B and vice versa.
		_, ca := checkpoint(t, s, l, a)
		_, cb := checkpoint(t, s, l, b)
		if ca.Origin == cb.Origin || ca.Root == cb.Root || ca.Size != 25 || cb.Size != 25 {
			t.Fatalf("checkpoints %+v and %+v", ca, cb)
		}
		verifyOK(t, s, l, a, 25)
		verifyOK(t, s, l, b, 25)
		// Growing one does not touch the other.
		appendN(t, s, l, a, 25, 3)
		verifyOK(t, s, l, a, 28)
		if rep := verifyOK(t, s, l, b, 25); rep.CheckpointSize != 25 {
			t.Fatalf("B after A grew: %+v", rep)
		}
		var ids []string
		if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditLogIDs(ctx); return err }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		if want := []string{a, b}; !slices.Equal(ids, want) {
			t.Fatalf("AuditLogIDs = %v, want %v", ids, want)
		}
		// CheckpointAll signs what grew: A's new size.
		if n, err := l.CheckpointAll(ctx, s); err != nil || n != 2 {
			t.Fatalf("CheckpointAll: %d, %v", n, err)
		}
		if rep := verifyOK(t, s, l, a, 28); rep.CheckpointSize != 28 {
			t.Fatalf("A after CheckpointAll: %+v", rep)
		}
	})
}
