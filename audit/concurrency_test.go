package audit_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
)

// appendConcurrently starts n goroutines per org that each append one event at once, and returns the
// indexes each org's appends were given.
func appendConcurrently(t *testing.T, s store.Store, l *audit.Log, orgs []string, n int) map[string][]int64 {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]int64{}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, org := range orgs {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				var idx int64
				err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
					var err error
					idx, err = l.Append(ctx, tx, event(i))
					return err
				})
				if err != nil {
					t.Errorf("%s: concurrent append %d: %v", org, i, err)
					return
				}
				mu.Lock()
				got[org] = append(got[org], idx)
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
	return got
}

func contiguous(t *testing.T, org string, idx []int64, n int) {
	t.Helper()
	slices.Sort(idx)
	for i, x := range idx {
		if x != int64(i) {
			t.Fatalf("%s: indexes %v are not 0..%d", org, idx, n-1)
		}
	}
	if len(idx) != n {
		t.Fatalf("%s: %d appends succeeded, want %d", org, len(idx), n)
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
		got := appendConcurrently(t, s, l, []string{org}, 50)
		contiguous(t, org, got[org], 50)
		checkpoint(t, s, l, org)
		rep := verifyOK(t, s, l, org, 50)
		if rep.CheckpointSize != 50 {
			t.Fatalf("checkpoint size %d", rep.CheckpointSize)
		}
		// Every leaf decodes, and each goroutine's event is there once.
		var subjects []string
		for _, lf := range leaves(t, s, org) {
			subjects = append(subjects, mustDecode(t, lf.Data).Subject.ID)
		}
		slices.Sort(subjects)
		if len(slices.Compact(subjects)) != 50 {
			t.Fatalf("subjects %v", subjects)
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
		got := appendConcurrently(t, s, l, []string{a, b}, 25)
		contiguous(t, a, got[a], 25)
		contiguous(t, b, got[b], 25)
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
