package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// sequenceBatch is how many queued records one sequencing transaction takes.
const sequenceBatch = 1000

// Sequence gives orgID's queued records their indexes, in batches of up to 1,000 per transaction, until
// the queue it saw is empty, and reports how many it sequenced. Each batch holds the log's head lock,
// so sequencers on several replicas take turns and none records a queued row twice; a batch reads the
// queue after the lock, so it sees what an earlier holder left. A sealed log is left as it is.
func (l *Log) Sequence(ctx context.Context, s store.Store, orgID string) (int, error) {
	return l.sequence(ctx, s, orgID, false)
}

// sequence is Sequence; queued says the caller saw records queued (the Sequencer's wake-up and
// sweep), so the first look before the lock is skipped: under load it was a read transaction for
// every batch.
func (l *Log) sequence(ctx context.Context, s store.Store, orgID string, queued bool) (int, error) {
	total := 0
	for look := !queued; ; look = true {
		// A read before the lock: readers call this on every request, and mostly there is nothing
		// queued. Whatever committed before the call is visible to it.
		if look {
			if found, err := anyQueued(ctx, s, orgID); err != nil || !found {
				return total, err
			}
		}
		var n int
		err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
			head, err := tx.AuditLockHead(ctx, emptyRoot[:])
			if err != nil {
				return fmt.Errorf("audit: lock head: %w", err)
			}
			if head.Sealed {
				return errSealedQueue
			}
			_, n, err = l.sequenceLocked(ctx, tx, head)
			return err
		})
		if errors.Is(err, errSealedQueue) {
			return total, nil // erasure deletes it
		}
		if err != nil {
			return total, fmt.Errorf("audit: sequence %s: %w", orgID, err)
		}
		l.metrics.AuditSequenced(n)
		if total += n; n < sequenceBatch {
			return total, nil
		}
	}
}

// anyQueued reports whether orgID's log has queued records, in a read-only transaction.
func anyQueued(ctx context.Context, s store.Store, orgID string) (bool, error) {
	var queued bool
	err := s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
		q, err := tx.AuditQueued(ctx, 0, 1)
		queued = len(q) > 0
		return err
	})
	return queued, err
}

var errSealedQueue = errors.New("audit: queued records of a sealed log")

// sequenceLocked sequences up to sequenceBatch queued records into the log whose head tx has locked,
// and returns the new head and how many it took.
func (l *Log) sequenceLocked(ctx context.Context, tx store.OrgTx, head store.AuditHead) (store.AuditHead, int, error) {
	queued, err := tx.AuditQueued(ctx, 0, sequenceBatch)
	if err != nil || len(queued) == 0 {
		return head, 0, err
	}
	f, err := loadFrontier(ctx, tx, head)
	if err != nil {
		return head, 0, err
	}
	now := l.now().UTC()
	b := store.AuditBatch{
		From:    head.Size,
		Leaves:  make([]store.AuditLeaf, len(queued)),
		Dequeue: make([]int64, len(queued)),
	}
	var hashes []tlog.Hash
	var buf []byte
	var w tileWriter
	for i, q := range queued {
		b.Leaves[i] = store.AuditLeaf{Index: head.Size + int64(i), Data: q.Data}
		b.Dequeue[i] = q.ID
		hashes = f.add(leafHash(q.Data, &buf), hashes[:0])
		w.add(b.Leaves[i].Index, hashes)
	}
	b.Tiles = w.tiles
	root := f.root()
	b.Head = store.AuditHead{Size: f.size, Root: root[:], Frontier: f.encode(), UpdatedAt: now}
	if err := tx.AuditSequence(ctx, b); err != nil {
		return head, 0, err
	}
	return b.Head, len(queued), nil
}

// signal notes that orgID has queued records, for a Sequencer in this process.
func (l *Log) signal(orgID string) {
	l.mu.Lock()
	l.dirty[orgID] = struct{}{}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *Log) takeDirty() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.dirty))
	for id := range l.dirty {
		out = append(out, id)
	}
	clear(l.dirty)
	return out
}

// Sequencer runs sequencing in the background: soon after this process queues records (it waits
// Linger to gather a batch), and every Sweep for every log with queued records, which picks up what a
// replica that crashed left behind. Several replicas may run one each.
type Sequencer struct {
	l   *Log
	s   store.Store
	log *slog.Logger
	// Linger is how long a wake-up waits for more records before sequencing (default 5 ms).
	Linger time.Duration
	// Sweep is how often every queued log is sequenced (default 1 s).
	Sweep time.Duration
}

// NewSequencer returns a Sequencer for l's logs in s.
func NewSequencer(l *Log, s store.Store, logger *slog.Logger) *Sequencer {
	return &Sequencer{l: l, s: s, log: logger, Linger: 5 * time.Millisecond, Sweep: time.Second}
}

// Run sequences until ctx is done, then sequences what this process queued last (for up to 5 s) and
// returns nil. Errors are logged and retried by the next sweep.
func (q *Sequencer) Run(ctx context.Context) error {
	sweep := time.NewTicker(q.Sweep)
	defer sweep.Stop()
	defer func() {
		last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, id := range q.l.takeDirty() {
			q.sequence(last, id)
		}
	}()
	q.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.l.wake:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(q.Linger):
			}
			for _, id := range q.l.takeDirty() {
				q.sequence(ctx, id)
			}
		case <-sweep.C:
			q.sweep(ctx)
		}
	}
}

// SweepOnce sequences every log that has queued records.
func (q *Sequencer) SweepOnce(ctx context.Context) error {
	var ids []string
	err := q.s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditQueuedLogIDs(ctx); return err })
	if err != nil {
		return fmt.Errorf("audit: queued logs: %w", err)
	}
	var errs []error
	for _, id := range ids {
		if _, err := q.l.sequence(ctx, q.s, id, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (q *Sequencer) sweep(ctx context.Context) {
	if err := q.SweepOnce(ctx); err != nil && ctx.Err() == nil {
		q.log.Error("audit sequencer sweep", "err", err)
	}
}

func (q *Sequencer) sequence(ctx context.Context, orgID string) {
	if _, err := q.l.sequence(ctx, q.s, orgID, true); err != nil && ctx.Err() == nil {
		q.log.Error("audit sequencer", "org", orgID, "err", err)
	}
}
