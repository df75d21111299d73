package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/ony-ai/ony/store"
)

// testAuditQueue (issue 12): records queue per organization in id order; a batch writes leaves,
// hashes and the head (frontier included) and dequeues exactly its records, once; a batch that does
// not follow the head, replays dequeued records or targets a sealed log fails whole; erasure takes the
// queue with it.
func testAuditQueue(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.AuditEnqueue(ctx, now(), []byte("r1"), []byte("r2")), tx.AuditEnqueue(ctx, now(), []byte("r3")))
	}))
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error { return tx.AuditEnqueue(ctx, now(), []byte("b1")) }))
	queuedLogs := func() []string {
		var ids []string
		must(t, s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditQueuedLogIDs(ctx); return err }))
		return ids
	}
	if got, want := queuedLogs(), slices.Sorted(slices.Values([]string{a.Org.ID, b.Org.ID})); !slices.Equal(got, want) {
		t.Fatalf("AuditQueuedLogIDs = %v, want %v", got, want)
	}
	var q []store.AuditQueued
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) (err error) { q, err = tx.AuditQueued(ctx, 0, 2); return err }))
	if len(q) != 2 || string(q[0].Data) != "r1" || string(q[1].Data) != "r2" || q[0].ID >= q[1].ID || q[0].CreatedAt.IsZero() {
		t.Fatalf("AuditQueued(2) = %+v, want r1, r2 in id order", q)
	}
	var after []store.AuditQueued
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) (err error) { after, err = tx.AuditQueued(ctx, q[0].ID, 10); return err }))
	if len(after) != 2 || string(after[0].Data) != "r2" || string(after[1].Data) != "r3" {
		t.Fatalf("AuditQueued after r1 = %+v, want r2, r3", after)
	}
	frontier := randBytes(32)
	root := randBytes(32)
	batch := func(from int64, data []string, dequeue []int64) store.AuditBatch {
		bt := store.AuditBatch{From: from, Dequeue: dequeue,
			Head:  store.AuditHead{Size: from + int64(len(data)), Root: root, Frontier: frontier, UpdatedAt: now()},
			Tiles: []store.AuditTile{{Level: 0, Index: 0, Start: int(from)}}}
		for i, d := range data {
			bt.Leaves = append(bt.Leaves, store.AuditLeaf{Index: from + int64(i), Data: []byte(d)})
			bt.Tiles[0].Data = append(bt.Tiles[0].Data, randBytes(32)...)
		}
		return bt
	}
	sequence := func(bt store.AuditBatch) error {
		return s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
				return err
			}
			return tx.AuditSequence(ctx, bt)
		})
	}
	first := batch(0, []string{"r1", "r2"}, []int64{q[0].ID, q[1].ID})
	must(t, sequence(first))
	// A verification page: leaves and tiles as stored, in order, in one buffer each.
	var page store.AuditPage
	for round := 0; round < 2; round++ { // the second reuses the buffers
		must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error { return tx.AuditReadPage(ctx, 0, 10, &page) }))
		if len(page.Index) != 2 || page.Index[1] != 1 || string(page.Leaf(0)) != "r1" || string(page.Leaf(1)) != "r2" {
			t.Fatalf("AuditReadPage leaves: %v %q", page.Index, page.Data)
		}
		if len(page.Tiles) != 1 || page.Tiles[0].Level != 0 || page.Tiles[0].Index != 0 ||
			string(page.Tiles[0].Data) != string(first.Tiles[0].Data) {
			t.Fatalf("AuditReadPage tiles: %+v", page.Tiles)
		}
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		h, err := tx.AuditHead(ctx)
		if err != nil {
			return err
		}
		if h.Size != 2 || string(h.Root) != string(root) || string(h.Frontier) != string(frontier) || h.Sealed {
			return fmt.Errorf("head after the batch: %+v", h)
		}
		ls, err := tx.AuditLeaves(ctx, 0, 10)
		if err != nil {
			return err
		}
		if len(ls) != 2 || string(ls[0].Data) != "r1" || ls[1].Index != 1 || string(ls[1].Data) != "r2" {
			return fmt.Errorf("leaves after the batch: %+v", ls)
		}
		tiles, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}, {Level: 0, Index: 1}, {Level: 1, Index: 0}})
		if err != nil {
			return err
		}
		if len(tiles) != 1 || tiles[0].Level != 0 || tiles[0].Index != 0 || string(tiles[0].Data) != string(first.Tiles[0].Data) {
			return fmt.Errorf("tiles after the batch: %+v", tiles)
		}
		left, err := tx.AuditQueued(ctx, 0, 10)
		if err != nil {
			return err
		}
		if len(left) != 1 || string(left[0].Data) != "r3" {
			return fmt.Errorf("queue after the batch: %+v, want r3 alone", left)
		}
		return nil
	}))
	// Records already sequenced cannot be sequenced again; a batch that does not start at the head
	// fails; each failure leaves the log as it was.
	if err := sequence(batch(2, []string{"r1"}, []int64{q[0].ID})); err == nil {
		t.Error("a batch replaying a dequeued record was stored")
	}
	if err := sequence(batch(1, []string{"r3"}, nil)); err == nil {
		t.Error("a batch not starting at the head's size was stored")
	}
	// A batch extends the partial tile after exactly the hashes it holds, never over them or past a gap.
	for _, start := range []int{1, 3} {
		bt := batch(2, []string{"r3"}, []int64{after[1].ID})
		bt.Tiles[0].Start = start
		if err := sequence(bt); err == nil {
			t.Errorf("a batch extending the tile from %d of 2 hashes was stored", start)
		}
	}
	second := batch(2, []string{"r3"}, []int64{after[1].ID})
	must(t, sequence(second))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		tiles, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}})
		if err != nil {
			return err
		}
		if want := string(first.Tiles[0].Data) + string(second.Tiles[0].Data); len(tiles) != 1 || string(tiles[0].Data) != want {
			return fmt.Errorf("the tile after its extension: %+v", tiles)
		}
		return nil
	}))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
			return err
		}
		return tx.AuditSeal(ctx, now())
	}))
	if err := sequence(batch(3, []string{"r4"}, nil)); err == nil {
		t.Error("a batch was stored into a sealed log")
	}
	for _, data := range [][][]byte{{[]byte("late")}, {[]byte("late"), []byte("later")}} {
		err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error { return tx.AuditEnqueue(ctx, now(), data...) })
		if !errors.Is(err, store.ErrSealed) {
			t.Errorf("queueing %d records into a sealed log: %v, want ErrSealed", len(data), err)
		}
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		h, err := tx.AuditHead(ctx)
		if err == nil && (h.Size != 3 || !h.Sealed) {
			err = fmt.Errorf("head after the refused batches: %+v", h)
		}
		return err
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, a.Org.ID) }))
	if got := queuedLogs(); !slices.Equal(got, []string{b.Org.ID}) {
		t.Fatalf("AuditQueuedLogIDs after erasing A = %v, want B's alone", got)
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		left, err := tx.AuditQueued(ctx, 0, 10)
		if err == nil && len(left) != 0 {
			err = fmt.Errorf("%d queued records of the erased org remain", len(left))
		}
		return err
	}))
}

// testHandoffLogged (issue 12): a handoff and the record of its creation are stored together, the
// handoff as InsertHandoff stores it and the record behind those queued before it; a sealed log
// refuses the record, and the transaction that took the refusal leaves no handoff.
func testHandoffLogged(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	h := NewHandoff(a.Org.ID, a.Device.ID)
	h.PayloadKind, h.PayloadSize, h.PayloadSealed, h.PayloadKept = "command", 3, []byte{0, 1, 0xff}, true
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.AuditEnqueue(ctx, now(), []byte("before")), tx.InsertHandoffLogged(ctx, h, now(), []byte("created")))
	}))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.HandoffByID(ctx, h.ID)
		if err != nil {
			return err
		}
		if want := AsRead(h); !reflect.DeepEqual(got, want) {
			return fmt.Errorf("handoff stored with its record:\n got %+v\nwant %+v", got, want)
		}
		payload, err := tx.HandoffPayload(ctx, h.ID)
		if err == nil && string(payload) != string(h.PayloadSealed) {
			err = fmt.Errorf("payload %x, want %x", payload, h.PayloadSealed)
		}
		if err != nil {
			return err
		}
		q, err := tx.AuditQueued(ctx, 0, 10)
		if err == nil && (len(q) != 2 || string(q[0].Data) != "before" || string(q[1].Data) != "created") {
			err = fmt.Errorf("queue: %+v, want before, created", q)
		}
		return err
	}))

	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
			return err
		}
		return tx.AuditSeal(ctx, now())
	}))
	late := NewHandoff(a.Org.ID, a.Device.ID)
	err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error { return tx.InsertHandoffLogged(ctx, late, now(), []byte("late")) })
	if !errors.Is(err, store.ErrSealed) {
		t.Fatalf("a handoff logged into a sealed log: %v, want ErrSealed", err)
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.HandoffByID(ctx, late.ID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("the refused handoff: %v, want ErrNotFound", err)
		}
		return nil
	}))
}

// testAuditBundles (issue 12): leaves are stored a bundle to a row; batches that start and end inside
// bundles, or fill several at once, read back leaf for leaf, in any range, binary bytes included.
func testAuditBundles(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	const w = store.AuditBundleWidth
	var all [][]byte
	for _, n := range []int{5, w + 8, w - 2, 1, 2 * w} {
		from := int64(len(all))
		bt := store.AuditBatch{From: from, Head: store.AuditHead{Size: from + int64(n), Root: randBytes(32), UpdatedAt: now()}}
		for i := range n {
			leaf := randBytes(1 + (len(all)*37)%600) // lengths past 255 and 511 too
			all = append(all, leaf)
			bt.Leaves = append(bt.Leaves, store.AuditLeaf{Index: from + int64(i), Data: leaf})
		}
		must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
				return err
			}
			return tx.AuditSequence(ctx, bt)
		}))
	}
	size := int64(len(all))
	for _, r := range [][2]int64{{0, size + 10}, {3, 1}, {w - 1, 2}, {w + 3, w + 7}, {size - 1, 5}, {size, 5}} {
		var ls []store.AuditLeaf
		var page store.AuditPage
		must(t, s.ReadOrg(ctx, a.Org.ID, func(tx store.OrgTx) (err error) {
			if ls, err = tx.AuditLeaves(ctx, r[0], int(r[1])); err != nil {
				return err
			}
			return tx.AuditReadPage(ctx, r[0], int(r[1]), &page)
		}))
		want := all[min(r[0], size):min(r[0]+r[1], size)]
		if len(ls) != len(want) || len(page.Index) != len(want) {
			t.Fatalf("leaves %d+%d: AuditLeaves %d, AuditReadPage %d, want %d", r[0], r[1], len(ls), len(page.Index), len(want))
		}
		for k := range want {
			i := r[0] + int64(k)
			if ls[k].Index != i || string(ls[k].Data) != string(want[k]) || page.Index[k] != i || string(page.Leaf(k)) != string(want[k]) {
				t.Fatalf("leaves %d+%d: leaf %d read back as %d/%d, %d/%d bytes, want %d bytes", r[0], r[1], i,
					ls[k].Index, page.Index[k], len(ls[k].Data), len(page.Leaf(k)), len(want[k]))
			}
		}
	}
}

// BundleLeaves splits a stored audit bundle into its leaves, for tests that read or rewrite the log's
// rows directly.
func BundleLeaves(t testing.TB, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		leaf, rest, err := store.NextBundleLeaf(b)
		if err != nil {
			t.Fatalf("audit bundle: %v", err)
		}
		out, b = append(out, leaf), rest
	}
	return out
}

// Bundle is the stored audit bundle of leaves.
func Bundle(leaves [][]byte) []byte {
	var b []byte
	for _, l := range leaves {
		b = store.AppendBundleLeaf(b, l)
	}
	return b
}
