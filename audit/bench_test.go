package audit_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

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
// checkpoint, on each database, in leaves per second.
func BenchmarkVerify(b *testing.B) {
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org := orgID(b)
			buildLog(b, s, l, org, verifyLeaves)
			checkpoint(b, s, l, org)
			for b.Loop() {
				rep, err := l.Verify(ctx, s, org)
				if err != nil || !rep.OK() || rep.Size != verifyLeaves {
					b.Fatalf("verify: %+v, %v", rep, err)
				}
			}
			b.ReportMetric(float64(verifyLeaves)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
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
