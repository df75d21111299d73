package storetest

// Payload retention (issue 17): ScrubPayloads takes the sealed payload off final handoffs created
// before a time, in batches, and nothing else.

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ony-ai/ony/store"
)

func init() {
	isolationCases["ScrubPayloads"] = func(tx store.OrgTx, a Fixture) error {
		// A has an old, decided handoff with a payload (retentionIsolationSetup); B's scrub must not
		// reach it (the snapshot shows it still sealed). B's own old final handoffs: none.
		n, err := tx.ScrubPayloads(ctx, now().Add(time.Hour), 500)
		return errors.Join(err, expect(n == 0, fmt.Sprintf("ScrubPayloads scrubbed %d handoffs from B's scope, B has none to scrub", n)))
	}
	isolationCases["CountScrubbablePayloads"] = func(tx store.OrgTx, a Fixture) error {
		n, err := tx.CountScrubbablePayloads(ctx, now().Add(time.Hour))
		return errors.Join(err, expect(n == 0, fmt.Sprintf("CountScrubbablePayloads counted %d in B's scope, B has none", n)))
	}
}

// retentionIsolationSetup gives org A a decided handoff with a payload, created a day ago.
func retentionIsolationSetup(t *testing.T, s store.Store, a Fixture) {
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		h := NewHandoff(a.Org.ID, a.Device.ID)
		h.CreatedAt = now().Add(-24 * time.Hour)
		if err := tx.InsertHandoff(ctx, h); err != nil {
			return err
		}
		_, err := tx.FinishHandoff(ctx, h.ID, store.StatusDenied, store.Decision{ByKind: store.ActorUser, ByID: a.User.ID,
			OptionID: "deny", Channel: "api", DecidedAt: now()})
		return err
	}))
}

func runRetention(t *testing.T, open Opener) {
	t.Run("ScrubPayloads", func(t *testing.T) { t.Parallel(); testScrubPayloads(t, open(t)) })
}

// testScrubPayloads: of an org's handoffs, exactly the final ones created before the cut lose their
// sealed payload, in batches of the limit, oldest first; kind, size and every other field stay; a
// pending one, a recent one and one without a payload are untouched; another org is not touched;
// the count matches what a scrub then does.
func testScrubPayloads(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	other := NewFixture(t, s, "other")
	cut := now().Add(-30 * 24 * time.Hour)
	old := cut.Add(-time.Hour)
	finish := func(tx store.OrgTx, id string, st store.Status) error {
		d := store.Decision{ByKind: store.ActorSystem, ByID: "system", Channel: "system", DecidedAt: now()}
		if st == store.StatusApproved {
			d = store.Decision{OptionID: "approve", ByKind: store.ActorUser, ByID: f.User.ID, ByName: "Ana", Channel: "api", Comment: "ok", DecidedAt: now()}
		}
		ok, err := tx.FinishHandoff(ctx, id, st, d)
		return errors.Join(err, expect(ok, "FinishHandoff did not finish "+id))
	}
	insert := func(tx store.OrgTx, orgID, deviceID string, at time.Time, st store.Status, payload bool) (store.Handoff, error) {
		h := NewHandoff(orgID, deviceID)
		h.CreatedAt, h.ExpiresAt = at, at.Add(time.Hour)
		if !payload {
			h.PayloadKind, h.PayloadSize, h.PayloadSealed = "", 0, nil
		}
		if err := tx.InsertHandoff(ctx, h); err != nil {
			return h, err
		}
		if st != store.StatusPending {
			if err := finish(tx, h.ID, st); err != nil {
				return h, err
			}
		}
		return tx.HandoffByID(ctx, h.ID)
	}
	var scrub, keep []store.Handoff
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		// Five old final ones, one of each final status and a second approval, a minute apart.
		for i, st := range []store.Status{store.StatusApproved, store.StatusDenied, store.StatusExpired, store.StatusCancelled, store.StatusApproved} {
			h, err := insert(tx, f.Org.ID, f.Device.ID, old.Add(time.Duration(i-10)*time.Minute), st, true)
			if err != nil {
				return err
			}
			scrub = append(scrub, h)
		}
		for _, c := range []struct {
			at      time.Time
			st      store.Status
			payload bool
		}{
			{old, store.StatusPending, true},               // still needed by the deciders
			{cut.Add(time.Hour), store.StatusDenied, true}, // inside the window
			{old, store.StatusApproved, false},             // nothing to scrub
		} {
			h, err := insert(tx, f.Org.ID, f.Device.ID, c.at, c.st, c.payload)
			if err != nil {
				return err
			}
			keep = append(keep, h)
		}
		return nil
	}))
	var otherOld store.Handoff
	must(t, s.InOrg(ctx, other.Org.ID, func(tx store.OrgTx) (err error) {
		otherOld, err = insert(tx, other.Org.ID, other.Device.ID, old, store.StatusApproved, true)
		return err
	}))

	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		n, err := tx.CountScrubbablePayloads(ctx, cut)
		if err != nil || n != len(scrub) {
			return fmt.Errorf("CountScrubbablePayloads = %d, %v; want %d", n, err, len(scrub))
		}
		// Batches of two: 2, 2, 1, then nothing; the oldest go first.
		for i, want := range []int{2, 2, 1, 0} {
			n, err := tx.ScrubPayloads(ctx, cut, 2)
			if err != nil || n != want {
				return fmt.Errorf("ScrubPayloads batch %d = %d, %v; want %d", i, n, err, want)
			}
			if i == 0 {
				for j, h := range scrub {
					got, err := tx.HandoffByID(ctx, h.ID)
					if err != nil {
						return err
					}
					if gone := !got.PayloadKept; gone != (j < 2) {
						return fmt.Errorf("after the first batch, handoff %d scrubbed = %v: the oldest go first", j, gone)
					}
				}
			}
		}
		if n, err := tx.CountScrubbablePayloads(ctx, cut); err != nil || n != 0 {
			return fmt.Errorf("CountScrubbablePayloads after the scrub = %d, %v", n, err)
		}
		if _, err := tx.ScrubPayloads(ctx, cut, 0); err == nil {
			return errors.New("ScrubPayloads with no limit must be refused")
		}
		for _, h := range scrub {
			got, err := tx.HandoffByID(ctx, h.ID)
			if err != nil {
				return err
			}
			want := AsRead(h)
			want.PayloadKept = false
			if !reflect.DeepEqual(got, want) {
				return fmt.Errorf("scrubbed handoff:\n got %+v\nwant %+v (only the sealed payload goes)", got, want)
			}
			if b, err := tx.HandoffPayload(ctx, h.ID); err != nil || b != nil {
				return fmt.Errorf("HandoffPayload of a scrubbed handoff = %x, %v; want nil", b, err)
			}
			if got.PayloadKind != "command" || got.PayloadSize != 3 {
				return fmt.Errorf("scrubbed handoff lost its payload kind or size: %q %d", got.PayloadKind, got.PayloadSize)
			}
		}
		for _, h := range keep {
			got, err := tx.HandoffByID(ctx, h.ID)
			if err != nil {
				return err
			}
			if !reflect.DeepEqual(got, h) {
				return fmt.Errorf("a handoff that must keep its payload changed:\n got %+v\nwant %+v", got, h)
			}
		}
		return nil
	}))
	must(t, s.InOrg(ctx, other.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.HandoffByID(ctx, otherOld.ID)
		return errors.Join(err, expect(err != nil || reflect.DeepEqual(got, otherOld), "another org's handoff was scrubbed"))
	}))
}
