package sqlstore_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// BenchmarkListUsers reads the people of issue 12's big organization (2,000 and their contacts), as
// every rung that reaches people does.
func BenchmarkListUsers(b *testing.B) {
	for _, d := range testdb.Dialects {
		b.Run(d, func(b *testing.B) {
			s := testdb.Open(b, d)
			big := populate(b, s)
			ctx := context.Background()
			var n int
			for b.Loop() {
				must(b, s.ReadOrg(ctx, big.org, func(tx store.OrgTx) error {
					us, err := tx.ListUsers(ctx)
					n = len(us)
					return err
				}))
			}
			b.ReportMetric(float64(n), "users")
		})
	}
}

// BenchmarkListHandoffs reads a list page of fifty handoffs that carry 100 KB payloads each: a read
// of handoffs leaves the sealed payloads behind (HandoffPayload reads one).
func BenchmarkListHandoffs(b *testing.B) {
	for _, d := range testdb.Dialects {
		b.Run(d, func(b *testing.B) {
			s := testdb.Open(b, d)
			f := newFixture(b, s, "list")
			ctx := context.Background()
			must(b, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				for range 60 {
					h := storetest.NewHandoff(f.Org.ID, f.Device.ID)
					h.PayloadSealed = make([]byte, 100<<10)
					rand.Read(h.PayloadSealed) // sealed bytes do not compress
					h.PayloadSize = len(h.PayloadSealed)
					if err := tx.InsertHandoff(ctx, h); err != nil {
						return err
					}
				}
				return nil
			}))
			for b.Loop() {
				must(b, s.ReadOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
					_, err := tx.ListHandoffs(ctx, store.HandoffFilter{Limit: 50})
					return err
				}))
			}
		})
	}
}
