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

// BenchmarkAppend measures appends per second, each in a transaction of its own as the application
// does it (s.InOrg + Append), on each database.
func BenchmarkAppend(b *testing.B) {
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org := orgID(b)
			i := 0
			for b.Loop() {
				err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
					err := l.Append(ctx, tx, event(i))
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if h := head(b, s, org); h.Size != int64(i) {
				b.Fatalf("head %d after %d appends", h.Size, i)
			}
		})
	}
}

// BenchmarkVerify measures how fast Verify recomputes and checks a 10,000-leaf log, on each database.
func BenchmarkVerify(b *testing.B) {
	const n = 10_000
	for _, dialect := range testdb.Dialects {
		b.Run(dialect, func(b *testing.B) {
			s := openStore(b, dialect)
			l := newLog(b)
			org := orgID(b)
			appendBulk(b, s, l, org, 0, n)
			checkpoint(b, s, l, org)
			for b.Loop() {
				rep, err := l.Verify(ctx, s, org)
				if err != nil || !rep.OK() || rep.Size != n {
					b.Fatalf("verify: %+v, %v", rep, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
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
