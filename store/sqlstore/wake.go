package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// How a job reaches a worker soon after it is due, instead of after River's poll or its 5-second
// sweep of scheduled jobs:
//
//   - Jobs due within jobHorizon are inserted as available with their scheduled_at (dueAtOnce):
//     River's fetch only takes available jobs whose scheduled_at has passed, so such a job is
//     runnable the moment it is due, without waiting for the leader's scheduler to move it from
//     scheduled to available. Jobs due later are inserted scheduled, and each process running
//     workers moves those that come within the horizon to available every promoteEvery (promote),
//     arming its timers for them. Not all of them at once: River's fetch walks every available row
//     of the queue whose scheduled_at is in the future (its query's priority range keeps the
//     index from stopping at the due ones), so an expiry job per pending handoff, an hour out, made
//     every fetch read the whole backlog (85 % of the server's CPU with 40 k pending on SQLite).
//   - The process that commits a job wakes its own workers (waker): at once for a job due now, by a
//     timer for a job due later. The wake arrives as an insert notification through the worker
//     client's listener (wakeListener), the path River's own notifications take, so the producer
//     fetches as it would for a LISTEN/NOTIFY from another replica.
//   - Other replicas hear of jobs due now through River's notifications (PostgreSQL's LISTEN/NOTIFY
//     on a pgx connection, SQLite's notification table), and of everything else through the poll,
//     which remains the backstop: after a restart the timers are gone, and a wake lost to a full
//     buffer is covered by the next fetch.

// dueAtOnce makes River insert a future job as available rather than scheduled.
type dueAtOnce struct{ river.HookDefaults }

func (*dueAtOnce) InsertBegin(_ context.Context, p *rivertype.JobInsertParams) error {
	if p.State == rivertype.JobStateScheduled && p.ScheduledAt != nil && !beyondHorizon(*p.ScheduledAt, time.Now()) {
		p.State = rivertype.JobStateAvailable
	}
	return nil
}

// jobHorizon is how far ahead a job may be available before it is due; promoteEvery is how often a
// process looks for scheduled jobs that came within it (well inside the horizon, so a late look
// still finds them before they are due).
const (
	jobHorizon   = 2 * time.Second
	promoteEvery = 500 * time.Millisecond
)

func beyondHorizon(due, now time.Time) bool { return due.After(now.Add(jobHorizon)) }

// promote makes available the scheduled jobs due within the horizon and wakes this process's
// workers when each falls due, until stop is closed.
func (s *Store) promote(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(promoteEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.promoteOnce(ctx, time.Now().Add(jobHorizon)); err != nil {
			// River's own scheduler still moves them when due, up to its 5 s sweep late.
			s.log.Warn("making scheduled jobs available failed", "err", err)
		}
		cancel()
	}
}

// promoteOnce makes available the scheduled jobs due by until, and arms this process's wake for each.
func (s *Store) promoteOnce(ctx context.Context, until time.Time) error {
	dues, err := s.dialect.PromoteJobs(ctx, s.jdb, until.UTC())
	if err != nil {
		return err
	}
	for _, d := range dues {
		s.wake.at(d)
	}
	if len(dues) > 0 {
		s.notify.committed([]string{river.QueueDefault})
	}
	return nil
}

// waker carries this process's wake-ups to its worker client's listener. Wakes coalesce: one
// pending is enough, since one fetch takes every job due.
type waker struct {
	c chan struct{}
}

func newWaker() *waker { return &waker{c: make(chan struct{}, 1)} }

func (w *waker) poke() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// at pokes when t comes (a little after, so that the database's clock, which River's fetch reads,
// has passed it too).
func (w *waker) at(t time.Time) {
	time.AfterFunc(time.Until(t)+2*time.Millisecond, w.poke)
}

// wakeDriver is a River driver whose listener also hears the waker.
type wakeDriver struct {
	riverdriver.Driver[*sql.Tx]
	w *waker
}

func (d wakeDriver) SupportsListener() bool { return d.Driver.SupportsListener() }

func (d wakeDriver) GetListener(p *riverdriver.GetListenenerParams) riverdriver.Listener {
	return &wakeListener{Listener: d.Driver.GetListener(p), w: d.w}
}

// wakeListener returns an insert notification for the default queue when the waker pokes, and the
// inner listener's notifications otherwise.
type wakeListener struct {
	riverdriver.Listener
	w *waker

	mu   sync.Mutex
	held *riverdriver.Notification // the inner listener's, received while a wake was being returned
}

const insertTopic = "river_insert" // River's notifier.NotificationTopicInsert

var wakeNotification = riverdriver.Notification{Topic: insertTopic, Payload: `{"queue": "` + river.QueueDefault + `"}`}

func (l *wakeListener) WaitForNotification(ctx context.Context) (*riverdriver.Notification, error) {
	l.mu.Lock()
	if n := l.held; n != nil {
		l.held = nil
		l.mu.Unlock()
		return n, nil
	}
	l.mu.Unlock()
	select {
	case <-l.w.c:
		n := wakeNotification
		return &n, nil
	default:
	}
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		n   *riverdriver.Notification
		err error
	}
	got := make(chan result, 1)
	go func() {
		n, err := l.Listener.WaitForNotification(inner)
		got <- result{n, err}
	}()
	select {
	case r := <-got:
		return r.n, r.err
	case <-l.w.c:
		cancel()
		// Interrupted as River's notifier interrupts it for its pings; a notification that came in
		// meanwhile is returned next. An error other than the interruption (a broken connection)
		// shows again on the next wait, where the notifier handles it.
		if r := <-got; r.err == nil && r.n != nil {
			l.mu.Lock()
			l.held = r.n
			l.mu.Unlock()
		}
		n := wakeNotification
		return &n, nil
	}
}
