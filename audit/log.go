package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/store"
)

// emptyRoot is the RFC 6962 hash of the empty tree.
var emptyRoot, _ = tlog.TreeHash(0, nil)

// Log appends to and reads from every organization's log in a store.
type Log struct {
	keys     *Keys
	instance string
	known    KnownReason
	now      func() time.Time

	// wake tells a local Sequencer that records were queued, dirty which logs.
	wake  chan struct{}
	mu    sync.Mutex
	dirty map[string]struct{}

	metrics *metrics.Recorder
}

// SetMetrics makes the log count the records it queues and sequences; call it before the log is
// used. Without it nothing is counted.
func (l *Log) SetMetrics(m *metrics.Recorder) { l.metrics = m }

// New returns a Log. instance names this Ony in checkpoint origins; known vets risk reason codes.
func New(keys *Keys, instance string, known KnownReason, clock func() time.Time) *Log {
	if clock == nil {
		clock = time.Now
	}
	return &Log{keys: keys, instance: instance, known: known, now: clock, wake: make(chan struct{}, 1), dirty: map[string]struct{}{}}
}

// Keys are the signing keys' public halves.
func (l *Log) Keys() []string { return l.keys.Verifiers }

// Origin names one log: "<instance>/orgs/<org id>", or "<instance>/instance" for the instance log.
func (l *Log) Origin(orgID string) string {
	if orgID == store.InstanceLogID {
		return l.instance + "/instance"
	}
	return l.instance + "/orgs/" + orgID
}

// reader reads stored hashes through a transaction, from the hash tiles that hold or determine them.
func reader(ctx context.Context, tx store.OrgTx) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return readHashes(ctx, tx, idx)
	})
}

// readHashes reads the tiles the stored hashes idx are in, in one query, and computes each hash from
// its tile (tlog.HashFromTile): a tile holds the hashes of every eighth level, and those of the levels
// in between are hashed up from them.
func readHashes(ctx context.Context, tx store.OrgTx, idx []int64) ([]tlog.Hash, error) {
	type key struct {
		level int
		index int64
	}
	var keys []store.AuditTile
	seen := map[key]bool{}
	for _, x := range idx {
		t := tlog.TileForIndex(store.AuditTileHeight, x)
		if k := (key{t.L, t.N}); !seen[k] {
			seen[k] = true
			keys = append(keys, store.AuditTile{Level: t.L, Index: t.N})
		}
	}
	got, err := tx.AuditTiles(ctx, keys)
	if err != nil {
		return nil, err
	}
	data := make(map[key][]byte, len(got))
	for _, t := range got {
		data[key{t.Level, t.Index}] = t.Data
	}
	out := make([]tlog.Hash, len(idx))
	for j, x := range idx {
		t := tlog.TileForIndex(store.AuditTileHeight, x)
		d := data[key{t.L, t.N}]
		if len(d) < t.W*tlog.HashSize {
			return nil, fmt.Errorf("audit: stored hash %d (tile %d/%d holds %d bytes): %w", x, t.L, t.N, len(d), store.ErrNotFound)
		}
		if out[j], err = tlog.HashFromTile(t, d, x); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Append records e for the log of tx's organization inside tx, so the record commits with the change
// it describes or not at all. It only queues it: one insert, no lock, so changes of one organization
// do not wait for each other. The sequencer (Sequence, Sequencer) gives it its index later; every
// reader sequences first, so a committed record is in the log by the time anyone reads it.
func (l *Log) Append(ctx context.Context, tx store.OrgTx, e Event) error {
	return l.AppendWith(ctx, tx, e, func(at time.Time, record []byte) error { return tx.AuditEnqueue(ctx, at, record) })
}

// AppendWith is Append with the encoded record queued by enqueue, which queues it in tx as
// AuditEnqueue does, beside a change of its own (store.OrgTx's InsertHandoffLogged).
func (l *Log) AppendWith(ctx context.Context, tx store.OrgTx, e Event, enqueue func(at time.Time, record []byte) error) error {
	e.V = 1
	if e.At.IsZero() {
		e.At = l.now()
	}
	data, err := e.Encode(l.known)
	if err != nil {
		return err
	}
	// Erasure seals the log after sequencing it, and deletes whatever is queued after that.
	if err := enqueue(l.now().UTC(), data); errors.Is(err, store.ErrSealed) {
		return ErrSealed
	} else if err != nil {
		return fmt.Errorf("audit: queue: %w", err)
	}
	l.metrics.AuditAppended()
	l.signal(tx.OrgID())
	return nil
}

// Checkpoint returns a signed checkpoint of orgID's log at its current size, signing and storing a new
// one only when the log has grown since the last.
func (l *Log) Checkpoint(ctx context.Context, s store.Store, orgID string) ([]byte, error) {
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return nil, err
	}
	var out []byte
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		head, err := tx.AuditHead(ctx)
		if errors.Is(err, store.ErrNotFound) {
			head = store.AuditHead{Size: 0, Root: emptyRoot[:]}
		} else if err != nil {
			return err
		}
		last, err := tx.AuditLatestCheckpoint(ctx)
		if err == nil && last.Size == head.Size {
			out = last.Note
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c := Checkpoint{Origin: l.Origin(orgID), Size: head.Size}
		copy(c.Root[:], head.Root)
		if err == nil {
			// Never sign over a rewritten history: the new tree must extend the last one we signed.
			if err := l.extends(ctx, tx, last, c); err != nil {
				return err
			}
		}
		if out, err = l.keys.Sign(c); err != nil {
			return err
		}
		return tx.AuditPutCheckpoint(ctx, store.AuditCheckpoint{Size: head.Size, Note: out, CreatedAt: l.now().UTC()})
	})
	return out, err
}

// CheckpointAll refreshes the checkpoint of every log that has grown; the periodic job calls it.
func (l *Log) CheckpointAll(ctx context.Context, s store.Store) (int, error) {
	var ids, queued []string
	err := s.InSystem(ctx, func(tx store.SystemTx) (err error) {
		if ids, err = tx.AuditLogIDs(ctx); err != nil {
			return err
		}
		queued, err = tx.AuditQueuedLogIDs(ctx)
		return err
	})
	if err != nil {
		return 0, err
	}
	// A log whose first records are still queued has no head yet.
	ids = slices.Compact(slices.Sorted(slices.Values(append(ids, queued...))))
	var errs []error
	for _, id := range ids {
		if _, err := l.Checkpoint(ctx, s, id); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
		}
	}
	return len(ids), errors.Join(errs...)
}

// Inclusion is a proof that a leaf is in the tree of a given size.
type Inclusion struct {
	Index    int64       `json:"index"`
	Size     int64       `json:"tree_size"`
	LeafHash tlog.Hash   `json:"leaf_hash"`
	Proof    []tlog.Hash `json:"proof"`
}

// ProveInclusion proves leaf index is in the tree of size (0 = current size).
func (l *Log) ProveInclusion(ctx context.Context, s store.Store, orgID string, index, size int64) (Inclusion, error) {
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return Inclusion{}, err
	}
	var out Inclusion
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if size == 0 {
			head, err := tx.AuditHead(ctx)
			if err != nil {
				return err
			}
			size = head.Size
		}
		if err := l.checkSize(ctx, tx, size); err != nil {
			return err
		}
		if index < 0 || index >= size {
			return ErrRange
		}
		r := reader(ctx, tx)
		p, err := tlog.ProveRecord(size, index, r)
		if err != nil {
			return err
		}
		leaf, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
		if err != nil {
			return err
		}
		out = Inclusion{Index: index, Size: size, LeafHash: leaf[0], Proof: p}
		return nil
	})
	return out, err
}

// Consistency is a proof that the tree of size Old is a prefix of the tree of size New.
type Consistency struct {
	Old   int64       `json:"old_size"`
	New   int64       `json:"new_size"`
	Proof []tlog.Hash `json:"proof"`
}

// ProveConsistency proves the tree at old is a prefix of the tree at new (0 = current size).
func (l *Log) ProveConsistency(ctx context.Context, s store.Store, orgID string, old, newSize int64) (Consistency, error) {
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return Consistency{}, err
	}
	var out Consistency
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if newSize == 0 {
			head, err := tx.AuditHead(ctx)
			if err != nil {
				return err
			}
			newSize = head.Size
		}
		if err := l.checkSize(ctx, tx, newSize); err != nil {
			return err
		}
		if old < 1 || old > newSize {
			return ErrRange
		}
		p, err := tlog.ProveTree(newSize, old, reader(ctx, tx))
		out = Consistency{Old: old, New: newSize, Proof: p}
		return err
	})
	return out, err
}

var (
	// ErrRange reports an index or size outside the log.
	ErrRange = errors.New("audit: index or size outside the log")
	// ErrSealed reports an append to a log whose organization is being erased.
	ErrSealed = errors.New("audit: the log is sealed for erasure")
	// ErrInconsistent reports that the stored log does not extend its last signed checkpoint.
	ErrInconsistent = errors.New("audit: the log does not extend its last signed checkpoint; refusing to sign")
)

// extends checks, with a consistency proof over the stored hashes, that the tree at next.Size extends
// the tree the last signed checkpoint committed to.
func (l *Log) extends(ctx context.Context, tx store.OrgTx, last store.AuditCheckpoint, next Checkpoint) error {
	prev, err := OpenCheckpoint(last.Note, l.keys.Verifiers)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	if prev.Size > next.Size {
		return fmt.Errorf("%w: the log shrank from %d to %d", ErrInconsistent, prev.Size, next.Size)
	}
	if prev.Size == 0 {
		return nil
	}
	proof, err := tlog.ProveTree(next.Size, prev.Size, reader(ctx, tx))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	if err := tlog.CheckTree(proof, next.Size, next.Root, prev.Size, prev.Root); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	return nil
}

func (l *Log) checkSize(ctx context.Context, tx store.OrgTx, size int64) error {
	head, err := tx.AuditHead(ctx)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (size < 1 || size > head.Size)) {
		return ErrRange
	}
	return err
}

// rootB64 renders a root for tombstones.
func rootB64(h []byte) string { return base64.StdEncoding.EncodeToString(h) }

// EraseOrg deletes an organization and its whole log, and appends a tombstone — org id, final size and
// root, time and actor, nothing personal — to the instance log, so deliberate erasure can be told
// apart from silent truncation. Under the head lock it sequences everything queued and then seals the
// log, so the tombstone describes exactly the log that is deleted (records queued after the seal are
// deleted with the organization), and a crash part-way leaves a sealed log that a second attempt
// finishes.
func (l *Log) EraseOrg(ctx context.Context, s store.Store, orgID string, actor Actor) error {
	if orgID == store.InstanceLogID {
		return errors.New("audit: the instance log cannot be erased")
	}
	var head store.AuditHead
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if _, err := tx.Org(ctx); err != nil {
			return err
		}
		var err error
		if head, err = tx.AuditLockHead(ctx, emptyRoot[:]); err != nil {
			return err
		}
		if head.Sealed {
			return nil
		}
		for {
			var n int
			if head, n, err = l.sequenceLocked(ctx, tx, head); err != nil {
				return err
			}
			if n < sequenceBatch {
				break
			}
		}
		return tx.AuditSeal(ctx, l.now())
	})
	if err != nil {
		return err
	}
	err = s.InOrg(ctx, store.InstanceLogID, func(tx store.OrgTx) error {
		return l.Append(ctx, tx, Event{Type: OrgErased, Actor: actor, Subject: Subject{Kind: "org", ID: orgID},
			Channel: "system", Details: &Details{Size: head.Size, Root: rootB64(head.Root)}})
	})
	if err != nil {
		return fmt.Errorf("audit: tombstone: %w", err)
	}
	if _, err := l.Sequence(ctx, s, store.InstanceLogID); err != nil {
		return fmt.Errorf("audit: tombstone: %w", err)
	}
	return s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, orgID) })
}

// Leaves reads up to limit leaves of orgID's log from index from, as stored (the exact hashed bytes).
func (l *Log) Leaves(ctx context.Context, s store.Store, orgID string, from int64, limit int) ([]store.AuditLeaf, error) {
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return nil, err
	}
	var out []store.AuditLeaf
	err := s.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		out, err = tx.AuditLeaves(ctx, from, limit)
		return err
	})
	return out, err
}
