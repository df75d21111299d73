package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"

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
	c, err := river.NewClient(s.dialect.RiverDriver(s.db), &river.Config{
		Logger:            quietRiver(s.log),
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}},
		FetchPollInterval: poll,
		FetchCooldown:     min(poll, 50*time.Millisecond),
		MaxAttempts:       cfg.MaxAttempts,
		PeriodicJobs:      cfg.Periodic,
		// Most jobs are a transaction or two. Those that call out over the network (sends, callbacks,
		// message updates, the summarizer) declare their own Timeout, which River's rescuer honours:
		// a job left running by a killed process is retried after its own bound, so an escalation send
		// comes back within about a minute, where a common backstop of minutes (River's default is an
		// hour) let the ladder end before its last rung was sent.
		JobTimeout:           timeout,
		RescueStuckJobsAfter: timeout,
	})
	if err != nil {
		return fmt.Errorf("store: job runner: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("store: start jobs: %w", err)
	}
	s.runner = c
	return nil
}

// StopJobs implements store.Store: running jobs finish; queued ones stay in the database.
func (s *Store) StopJobs(ctx context.Context) error {
	s.mu.Lock()
	c := s.runner
	s.runner = nil
	s.mu.Unlock()
	if c == nil {
		return nil
	}
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

// enqueue inserts a job in tx. River's insert path (a generic many-row statement with arrays of every
// column, plus reflection to encode them) cost more CPU than the rest of a handoff's creation; the
// jobs Ony inserts use four of its options, so those take one plain INSERT, and anything else still
// goes through River.
func (s *Store) enqueue(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	var o river.InsertOpts
	if opts != nil {
		o = *opts
	}
	if a, ok := args.(river.JobArgsWithInsertOpts); ok || !plainOpts(o) {
		if ok {
			o = mergeOpts(o, a.InsertOpts())
		}
		if !plainOpts(o) {
			return s.enqueueRiver(ctx, tx, args, &o)
		}
	}
	data, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("store: enqueue %s: %w", args.Kind(), err)
	}
	now := time.Now().UTC()
	j := Job{Kind: args.Kind(), Args: data, MaxAttempts: cmp.Or(o.MaxAttempts, river.MaxAttemptsDefault),
		Priority: cmp.Or(o.Priority, river.PriorityDefault), Queue: cmp.Or(o.Queue, river.QueueDefault), CreatedAt: now, ScheduledAt: now}
	// An overdue ScheduledAt means now: River would park it as "scheduled" until the leader's next
	// sweep, up to seconds later, where "available" is picked up by the next fetch.
	if o.ScheduledAt.After(now) {
		j.ScheduledAt, j.Scheduled = o.ScheduledAt.UTC(), true
	}
	// Every notifying transaction takes PostgreSQL's one notification lock at commit, so like River
	// this sends at most one per notifyEvery; a job whose wake-up was skipped (or rolled back with
	// another transaction) is found by the next poll.
	if last := s.notified.Load(); !j.Scheduled && now.UnixNano()-last >= int64(notifyEvery) {
		j.Notify = s.notified.CompareAndSwap(last, now.UnixNano())
	}
	if err := s.dialect.InsertJob(ctx, tx, j); err != nil {
		return fmt.Errorf("store: enqueue %s: %w", args.Kind(), s.mapErr(err))
	}
	return nil
}

const notifyEvery = 5 * time.Millisecond

// plainOpts reports whether the options are only those the plain insert writes.
func plainOpts(o river.InsertOpts) bool {
	return uniqueEmpty(o.UniqueOpts) && len(o.Tags) == 0 && len(o.Metadata) == 0 && !o.Pending
}

func uniqueEmpty(u river.UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && len(u.ByState) == 0
}

// mergeOpts fills what the caller left unset from the job kind's own options, as River does.
func mergeOpts(o, kind river.InsertOpts) river.InsertOpts {
	if o.MaxAttempts == 0 {
		o.MaxAttempts = kind.MaxAttempts
	}
	if o.Priority == 0 {
		o.Priority = kind.Priority
	}
	if o.Queue == "" {
		o.Queue = kind.Queue
	}
	if o.ScheduledAt.IsZero() {
		o.ScheduledAt = kind.ScheduledAt
	}
	if uniqueEmpty(o.UniqueOpts) {
		o.UniqueOpts = kind.UniqueOpts
	}
	if len(o.Tags) == 0 {
		o.Tags = kind.Tags
	}
	if len(o.Metadata) == 0 {
		o.Metadata = kind.Metadata
	}
	o.Pending = o.Pending || kind.Pending
	return o
}

func (s *Store) enqueueRiver(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if !opts.ScheduledAt.IsZero() && !opts.ScheduledAt.After(time.Now()) {
		opts.ScheduledAt = time.Time{} // as above: overdue means now
	}
	if _, err := s.inserter.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("store: enqueue %s: %w", args.Kind(), err)
	}
	return nil
}
