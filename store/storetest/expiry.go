package storetest

// The expiry sweep (issue 12): DueHandoffs lists the pending handoffs past their deadline in every
// organization, earliest first, and nothing else.

import (
	"reflect"
	"testing"
	"time"

	"github.com/ony-ai/ony/store"
)

func runExpiry(t *testing.T, open Opener) {
	t.Run("DueHandoffs", func(t *testing.T) { t.Parallel(); testDueHandoffs(t, open(t)) })
}

// testDueHandoffs: of two organizations' handoffs, exactly the pending ones with expires_at at or
// before now are listed, across both orgs, earliest first, at most limit; a decided one, one due a
// microsecond later and the fixtures' own (due in an hour) are not.
func testDueHandoffs(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "acme")
	b := NewFixture(t, s, "other")
	n := now()
	insert := func(f Fixture, expires time.Time, decided bool) store.HandoffRef {
		h := NewHandoff(f.Org.ID, f.Device.ID)
		h.CreatedAt, h.ExpiresAt = expires.Add(-time.Hour), expires
		must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			if err := tx.InsertHandoff(ctx, h); err != nil {
				return err
			}
			if !decided {
				return nil
			}
			_, err := tx.FinishHandoff(ctx, h.ID, store.StatusDenied, store.Decision{ByKind: store.ActorUser, ByID: f.User.ID,
				OptionID: "deny", Channel: "api", DecidedAt: n})
			return err
		}))
		return store.HandoffRef{OrgID: f.Org.ID, ID: h.ID}
	}
	first := insert(b, n.Add(-3*time.Minute), false)
	second := insert(a, n.Add(-2*time.Minute), false)
	insert(a, n.Add(-time.Minute), true) // decided: not due for expiry
	third := insert(b, n, false)         // due exactly now
	insert(a, n.Add(time.Microsecond), false)
	list := func(limit int) []store.HandoffRef {
		var got []store.HandoffRef
		must(t, s.ReadSystem(ctx, func(tx store.SystemTx) (err error) {
			got, err = tx.DueHandoffs(ctx, n, limit)
			return err
		}))
		return got
	}
	if got, want := list(100), []store.HandoffRef{first, second, third}; !reflect.DeepEqual(got, want) {
		t.Errorf("DueHandoffs = %v, want %v", got, want)
	}
	if got, want := list(2), []store.HandoffRef{first, second}; !reflect.DeepEqual(got, want) {
		t.Errorf("DueHandoffs limit 2 = %v, want %v", got, want)
	}
}
