package audit_test

import (
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
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
					_, err := l.Append(ctx, tx, event(i))
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
