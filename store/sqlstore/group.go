package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit, for a database that admits one writer at a time (SQLite). Write transactions
// that queue while another commits are run together: one BEGIN, each in a savepoint of its own,
// one COMMIT. A function's error or panic rolls back its savepoint only, so each caller sees what
// it would have seen running alone after the ones before it, and none returns before the commit
// that makes its writes durable. Most of a small transaction's cost on SQLite is the commit (the
// WAL frames of every page it touched, and each create touches the same last pages of the same
// tables and indexes), so under load a batch costs little more than one transaction.

// maxGroup bounds a batch, so that one caller's wait stays a few transactions long.
const maxGroup = 32

type writeReq struct {
	ctx   context.Context
	fn    func(*sql.Tx) error
	state atomic.Int32 // queued → running (by a leader) → done, or queued → dropped (its ctx ended)
	done  chan struct{}
	err   error
	panic any
}

const (
	reqQueued int32 = iota
	reqRunning
	reqDropped
)

type group struct {
	// turn admits one leader at a time; a channel's blocked senders are woken first come, first
	// served, and a waiter can also give up.
	turn  chan struct{}
	mu    sync.Mutex
	queue []*writeReq
}

// inGroup runs fn in the next group commit. The caller that takes the turn leads: it runs the queue
// in order, batch by batch, until its own request is done, then passes the turn on.
func (s *Store) inGroup(ctx context.Context, fn func(*sql.Tx) error) error {
	g := s.group
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	g.mu.Unlock()
	select {
	case <-r.done:
	case g.turn <- struct{}{}:
		s.lead(r)
		<-g.turn
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqDropped) {
			return fmt.Errorf("store: begin: %w", ctx.Err())
		}
		// A leader has it: wait for the outcome, which may be a commit.
		<-r.done
	}
	return r.result()
}

func (r *writeReq) result() error {
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// lead runs batches from the head of the queue until mine is done.
func (s *Store) lead(mine *writeReq) {
	g := s.group
	for {
		select {
		case <-mine.done:
			return
		default:
		}
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		batch := make([]*writeReq, 0, n)
		for _, r := range g.queue[:n] {
			if r.state.CompareAndSwap(reqQueued, reqRunning) {
				batch = append(batch, r)
			}
		}
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()
		if len(batch) > 0 {
			s.runGroup(batch)
		}
	}
}

// runGroup runs batch in one transaction and completes every request in it.
func (s *Store) runGroup(batch []*writeReq) {
	if len(batch) == 1 {
		r := batch[0]
		r.err, r.panic = capture(func() error { return s.inTxOpts(r.ctx, nil, r.fn) })
		close(r.done)
		return
	}
	// The transaction outlives any one caller's context; each function's statements still use its own.
	bctx := context.WithoutCancel(batch[0].ctx)
	err := s.inTxOpts(bctx, nil, func(tx *sql.Tx) error {
		for _, r := range batch {
			if err := r.ctx.Err(); err != nil {
				r.err = fmt.Errorf("store: begin: %w", err)
				continue
			}
			if _, err := tx.ExecContext(bctx, "SAVEPOINT grp"); err != nil {
				return err
			}
			fnErr, p := capture(func() error { return r.fn(tx) })
			if fnErr != nil || p != nil {
				r.err, r.panic = s.classify(fnErr), p
				if _, err := tx.ExecContext(bctx, "ROLLBACK TO grp"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(bctx, "RELEASE grp"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the batch committed; those whose own work failed keep their own error.
		for _, r := range batch {
			if r.err == nil && r.panic == nil {
				r.err = err
			}
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// capture runs fn and returns its error, or the value it panicked with, for its caller's goroutine.
func capture(fn func() error) (err error, p any) {
	defer func() { p = recover() }()
	return fn(), nil
}
