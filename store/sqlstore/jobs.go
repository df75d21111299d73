package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/ony-ai/ony/store"
)

func migrateRiver(ctx context.Context, d riverdriver.Driver[*sql.Tx], logger *slog.Logger) error {
	m, err := rivermigrate.New(d, &rivermigrate.Config{Logger: quietRiver(logger)})
	if err != nil {
		return fmt.Errorf("store: job migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("store: job migrations: %w", err)
	}
	return nil
}

// promoteIndex serves PromoteJobs (wake.go) without reading every scheduled job. It is created after
// River's migrations, which make the table; River's own indexes all lead with the queue or the kind.
const promoteIndex = `CREATE INDEX IF NOT EXISTS ` + promoteIndexName + ` ON river_job (scheduled_at) WHERE state = 'scheduled'`

const promoteIndexName = "ony_river_job_scheduled_at"

// listenerDialect is a dialect whose worker client can listen for River's notifications on a
// connection of its own (PostgreSQL); the others poll River's notification table (SQLite).
type listenerDialect interface {
	RiverWorkerDriver(ctx context.Context, db *sql.DB) (d riverdriver.Driver[*sql.Tx], closeListener func(), err error)
}

// upkeepWorkers is how many upkeep jobs (store.QueueUpkeep) a runner works at once.
const upkeepWorkers = 2

// StartJobs implements store.Store: it starts a River client with workers on this database.
func (s *Store) StartJobs(ctx context.Context, workers *river.Workers, cfg store.JobsConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runner != nil {
		return errors.New("store: jobs already started")
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	n := cfg.Workers
	if n <= 0 {
		n = 10
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	driver, closeListener := s.dialect.RiverDriver(s.jdb), func() {}
	if ld, ok := s.dialect.(listenerDialect); ok {
		d, closeFn, err := ld.RiverWorkerDriver(ctx, s.jdb)
		if err != nil {
			return err
		}
		driver, closeListener = d, closeFn
	}
	c, err := river.NewClient[*sql.Tx](wakeDriver{Driver: driver, w: s.wake}, &river.Config{
		Logger:  quietRiver(s.log),
		Workers: workers,
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: n},
			store.QueueUpkeep:  {MaxWorkers: upkeepWorkers},
		},
		FetchPollInterval: poll,
		// Notifications and wakes (wake.go) trigger fetches; this only spaces them, so that a burst of
		// commits costs a fetch every few milliseconds rather than one each.
		FetchCooldown: min(poll, 5*time.Millisecond),
		MaxAttempts:   cfg.MaxAttempts,
		PeriodicJobs:  cfg.Periodic,
		// Most jobs are a transaction or two. Those that call out over the network (sends, callbacks,
		// message updates, the summarizer) declare their own Timeout, which River's rescuer honours:
		// a job left running by a killed process is retried after its own bound, so an escalation send
		// comes back within about a minute, where a common backstop of minutes (River's default is an
		// hour) let the ladder end before its last rung was sent.
		JobTimeout:           timeout,
		RescueStuckJobsAfter: timeout,
	})
	if err != nil {
		closeListener()
		return fmt.Errorf("store: job runner: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		closeListener()
		return fmt.Errorf("store: start jobs: %w", err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go s.promote(stop, done)
	s.runner, s.closeListener = c, func() {
		close(stop)
		<-done
		closeListener()
	}
	return nil
}

// StopJobs implements store.Store: running jobs finish; queued ones stay in the database.
func (s *Store) StopJobs(ctx context.Context) error {
	s.mu.Lock()
	c, closeListener := s.runner, s.closeListener
	s.runner, s.closeListener = nil, nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	defer closeListener()
	if err := c.Stop(ctx); err != nil {
		// Out of patience: cancel what is running; River retries those jobs later.
		return errors.Join(err, c.StopAndCancel(context.Background()))
	}
	return nil
}

// quietRiver keeps River's routine chatter out of the operator's log.
func quietRiver(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{h: l.Handler(), min: slog.LevelWarn})
}

type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{h: m.h.WithGroup(n), min: m.min} }

// enqueue inserts a job in tx and returns when it is due (zero: now). River's insert path (a generic
// many-row statement with arrays of every column, plus reflection to encode them) cost more CPU than
// the rest of a handoff's creation; the jobs Ony inserts use four of its options, so those take one
// plain INSERT, and anything else still goes through River.
//
// It also returns the job's id and queue. A job due now is announced to other replicas after the
// commit (notify.go), never from inside tx.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) (int64, time.Time, string, error) {
	var o river.InsertOpts
	if opts != nil {
		o = *opts
	}
	now := time.Now().UTC()
	var due time.Time
	// Overdue means now, so it counts as such for the wake after the commit (wake.go).
	if o.ScheduledAt.After(now) {
		due = o.ScheduledAt.UTC()
	}
	// A job kind with insert options of its own goes through River too, which merges them with these.
	if ko, kindOpts := args.(river.JobArgsWithInsertOpts); kindOpts || !plainOpts(o) {
		o.ScheduledAt = due
		queue := o.Queue
		if kindOpts {
			queue = cmp.Or(queue, ko.InsertOpts().Queue)
		}
		res, err := s.inserter.InsertTx(ctx, tx, args, &o)
		if err != nil {
			return 0, time.Time{}, "", fmt.Errorf("store: enqueue %s: %w", args.Kind(), err)
		}
		return res.Job.ID, due, cmp.Or(queue, river.QueueDefault), nil
	}
	data, err := json.Marshal(args)
	if err != nil {
		return 0, time.Time{}, "", fmt.Errorf("store: enqueue %s: %w", args.Kind(), err)
	}
	j := Job{Kind: args.Kind(), Args: data, MaxAttempts: cmp.Or(o.MaxAttempts, river.MaxAttemptsDefault),
		Priority: cmp.Or(o.Priority, river.PriorityDefault), Queue: cmp.Or(o.Queue, river.QueueDefault),
		CreatedAt: now, ScheduledAt: cmp.Or(due, now), State: string(rivertype.JobStateAvailable)}
	if !due.IsZero() && beyondHorizon(due, now) {
		j.State = string(rivertype.JobStateScheduled)
	}
	id, err := s.dialect.InsertJob(ctx, tx, j)
	if err != nil {
		return 0, time.Time{}, "", fmt.Errorf("store: enqueue %s: %w", args.Kind(), s.mapErr(err))
	}
	return id, due, j.Queue, nil
}

// plainOpts reports whether the options are only those the plain insert writes.
func plainOpts(o river.InsertOpts) bool {
	return uniqueEmpty(o.UniqueOpts) && len(o.Tags) == 0 && len(o.Metadata) == 0 && !o.Pending
}

func uniqueEmpty(u river.UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && len(u.ByState) == 0
}

// JobCounts implements store.Store.
func (s *Store) JobCounts(ctx context.Context, states []string) (map[string]int64, error) {
	out := make(map[string]int64, len(states))
	if len(states) == 0 {
		return out, nil
	}
	args := make([]any, len(states))
	for i, st := range states {
		args[i] = st
	}
	q := s.dialect.Rebind(`SELECT state, count(*) FROM river_job WHERE state IN (?` + strings.Repeat(", ?", len(states)-1) + `) GROUP BY state`)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: count jobs: %w", s.classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("store: count jobs: %w", err)
		}
		out[st] = n
	}
	return out, s.classify(rows.Err())
}
