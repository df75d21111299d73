package sqlstore

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"sync"
	"time"
)

// jobNotifier is a dialect that tells other processes' workers of jobs committed here (PostgreSQL:
// River's insert notification, sent with NOTIFY).
type jobNotifier interface {
	NotifyJobs(ctx context.Context, db *sql.DB, queues []string) error
}

// notifier sends the insert notifications of committed jobs after their commit, outside the
// transactions that inserted them.
//
// A PostgreSQL transaction that has sent a NOTIFY takes one lock at commit that is shared by every
// database of the server, and holds it through its commit's WAL flush, so notifying transactions commit
// one after another. Sent inside a decision's transaction, the notification made the decision (and
// the agent waiting on it) wait for every other notifying commit in flight, this process's job
// completions and creates included. Sent here, no request's transaction takes that lock.
//
// A notification is only a wake-up: this process's own workers are woken directly (wake.go), other
// replicas fetch at their next poll if one is lost, and one sent after the commit is still sent only
// for jobs that committed. At most one is in flight; commits meanwhile coalesce into the next.
type notifier struct {
	db    *sql.DB
	d     jobNotifier
	onErr func(error)

	mu      sync.Mutex
	pending map[string]struct{} // queues to announce
	started bool
	stopped bool
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newNotifier(db *sql.DB, d jobNotifier, onErr func(error)) *notifier {
	return &notifier{db: db, d: d, onErr: onErr, pending: map[string]struct{}{}, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// committed notes that jobs due now were committed on queues.
func (n *notifier) committed(queues []string) {
	if n == nil || len(queues) == 0 {
		return
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	for _, q := range queues {
		n.pending[q] = struct{}{}
	}
	if !n.started {
		n.started = true
		go n.run()
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) take() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	qs := slices.Sorted(maps.Keys(n.pending))
	clear(n.pending)
	return qs
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.kick:
			n.send()
		case <-n.stop:
			n.send() // what committed before close
			return
		}
	}
}

func (n *notifier) send() {
	qs := n.take()
	if len(qs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.d.NotifyJobs(ctx, n.db, qs); err != nil && n.onErr != nil {
		n.onErr(err)
	}
}

// close sends what is pending and stops; commits after it are not announced (the pool is closing,
// and the poll finds their jobs).
func (n *notifier) close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	started := n.started
	n.mu.Unlock()
	if started {
		close(n.stop)
		<-n.done
	}
}
