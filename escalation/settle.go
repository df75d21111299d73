package escalation

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ony-ai/ony/store"
)

// Settles that change nothing but a send's row (a send accepted by its provider, the common end of a
// rung) are written together: those of one organization that arrive while maxBatches batches of its
// settles are being written queue, and go in the next batch, one transaction with one statement each.
// On PostgreSQL a settle of its own was four round trips (BEGIN, the org's scope, the update, COMMIT)
// and a commit's WAL flush; in a batch it is about one. Nobody waits for a batch to fill: a settle
// that finds fewer than maxBatches being written, and none queued, is written at once, alone, as
// before; and a few batches in flight rather than one keep a slow commit (a busy machine) from
// holding every job behind it. Each caller returns after the commit that holds its row, so a job
// still finishes only once its send is recorded; and a batch that fails is written again one settle
// per transaction, so one bad row cannot fail the others. The cancel of a first rung's rescue job,
// which follows its settles (first.go), goes in these batches too.

// maxSettles bounds a batch, so that a settle waits for a few statements, not a queue of them;
// maxBatches bounds the batches of one organization being written at once.
const (
	maxSettles = 64
	maxBatches = 4
)

type settleReq struct {
	a     SendArgs
	from  []store.SendState
	u     store.SendUpdate
	job   int64         // if set, the request cancels this job instead (a first rung's rescue, first.go)
	lead  chan struct{} // closed when this request is to write batch (set before)
	batch []*settleReq
	done  chan struct{} // closed when err is set
	err   error
}

// orgSettles are one organization's settles waiting for a batch, and how many batches of its are
// being written.
type orgSettles struct {
	running int
	queue   []*settleReq
}

type settler struct {
	mu   sync.Mutex
	orgs map[string]*orgSettles
}

// settleOnly records u on a's send row if its state is one of from, batched with the organization's
// other such settles; no job is enqueued and nothing depends on whether the row moved.
func (e *Engine) settleOnly(ctx context.Context, a SendArgs, from []store.SendState, u store.SendUpdate) error {
	return e.batched(ctx, a.OrgID, &settleReq{a: a, from: from, u: u})
}

// cancelJob cancels the org's job id, batched with its settles: a first rung's rescue is cancelled
// right after the rung's settles, which are most likely in the batch being written.
func (e *Engine) cancelJob(ctx context.Context, orgID string, id int64) error {
	return e.batched(ctx, orgID, &settleReq{job: id})
}

// batched writes r in the next batch of org's settles and returns after its commit.
func (e *Engine) batched(ctx context.Context, org string, r *settleReq) error {
	s := &e.settles
	r.lead, r.done = make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	if s.orgs == nil {
		s.orgs = map[string]*orgSettles{}
	}
	g := s.orgs[org]
	if g == nil {
		g = &orgSettles{}
		s.orgs[org] = g
	}
	var batch []*settleReq
	if g.running < maxBatches && len(g.queue) == 0 {
		g.running++
		batch = []*settleReq{r}
	} else {
		g.queue = append(g.queue, r)
	}
	s.mu.Unlock()
	if batch == nil {
		select {
		case <-r.done:
			return r.err
		case <-r.lead:
			batch = r.batch
		}
	}

	// The batch holds other jobs' settles, so it is not cut short by this job's cancellation.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	e.writeSettles(bctx, org, batch)
	cancel()

	// Hand the queue on as the next batch, led by its first request; or, with none, finish.
	s.mu.Lock()
	if len(g.queue) > 0 {
		n := min(len(g.queue), maxSettles)
		next := g.queue[:n:n]
		g.queue = g.queue[n:]
		next[0].batch = next
		close(next[0].lead)
	} else if g.running--; g.running == 0 {
		delete(s.orgs, org)
	}
	s.mu.Unlock()
	for _, q := range batch {
		close(q.done)
	}
	return r.err
}

// writeSettles writes batch in one transaction of the organization, or, if that fails, each in its own.
func (e *Engine) writeSettles(ctx context.Context, org string, batch []*settleReq) {
	one := func(tx store.OrgTx, q *settleReq) error {
		var err error
		if q.job != 0 {
			_, err = tx.CancelJob(ctx, q.job)
		} else {
			_, err = tx.SetSendState(ctx, q.a.HandoffID, q.a.key(), q.from, q.u)
		}
		return err
	}
	err := e.d.Store.InOrg(ctx, org, func(tx store.OrgTx) error {
		for _, q := range batch {
			if err := one(tx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(batch) == 1 {
		for _, q := range batch {
			q.err = settleErr(err)
		}
		return
	}
	for _, q := range batch {
		q.err = settleErr(e.d.Store.InOrg(ctx, org, func(tx store.OrgTx) error { return one(tx, q) }))
	}
}

// settleErr is a settle's outcome as settleRetry reports it: an erased org or handoff is no error.
func settleErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
