package sqlstore

import (
	"context"
	"database/sql"
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
