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
//   - Future jobs are inserted as available with their scheduled_at (dueAtOnce): River's fetch only
//     takes available jobs whose scheduled_at has passed, so such a job is runnable the moment it is
//     due, without waiting for the leader's scheduler to move it from scheduled to available.
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
	if p.State == rivertype.JobStateScheduled {
		p.State = rivertype.JobStateAvailable
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
