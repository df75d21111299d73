package escalation

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/store"
)

// Limit caps what reaching people on one metered kind costs ("sms", "calls": channel.Kind.Meter);
// 0 turns a cap off.
type Limit struct {
	PerUserHour, PerUserDay, PerOrgDay int
}

// Deps are what an Engine is built from.
type Deps struct {
	Store store.Store
	Audit *audit.Log
	Coord coord.Coord
	// Channels are the configured channels; their kinds are every kind a ladder may name.
	Channels *channel.Registry
	// Ladders are the instance's ladders (from files); organizations can replace them by name.
	Ladders *Set
	Logger  *slog.Logger
	Clock   func() time.Time
	// Redact cleans agent-written text (option labels) before it leaves the process.
	Redact func(orgID, s string) string
	// ObserveLateness, if set, is told how late each step and send job started against its schedule,
	// and each send a rung's job makes itself how long after the rung claimed it (as "escalation.send").
	ObserveLateness func(kind string, late time.Duration)
	// StepUp, if set, reports whether approving at risk needs a second factor in the org
	// (auth/totp.Service.StepUpRequired); notifications then carry StepUp. Nil means never.
	StepUp func(ctx context.Context, orgID, risk string) (bool, error)
	// Metrics counts sends and observes rung lateness; nil records nothing.
	Metrics *metrics.Recorder
}

// Config tunes the engine.
type Config struct {
	PublicURL   string
	SendTimeout time.Duration
	// Limits cap the metered kinds, by meter name.
	Limits map[string]Limit
	// SendAttempts bounds how often one notification is retried when every provider errors.
	SendAttempts int
}

// Engine runs ladders: it freezes one onto each new handoff, runs each step as a durable job, reaches
// people through channels, and updates what it sent when the handoff ends. It is the handoff
// service's Escalator.
type Engine struct {
	d     Deps
	cfg   Config
	kinds *channel.Kinds

	parsed sync.Map // org|name|version|digest → *Ladder, so a stored ladder is parsed once per process

	stats Stats

	settles settler // batches of settles, per organization (settle.go)

	// firstSends are the first rungs' sends under way after their creates' commits (first.go).
	firstSends sync.WaitGroup
	// rungTimeout bounds one run of a rung (stepWorker.Timeout); a first rung's sends end by it.
	rungTimeout time.Duration

	admit *admission // holds creates back while rungs run late (admission.go)

	// crashAfterCommit, set by tests, stands in for a process that dies after a rung's transaction
	// committed and before its sends: RunStepJob returns errSimulatedCrash there.
	crashAfterCommit func(StepArgs) bool
	// firstRungByJob, set by tests, leaves a handoff's first rung to a step job due at once, as
	// every rung after it is run, so that tests of that path can drive it on a one-rung ladder.
	firstRungByJob bool
}

var errSimulatedCrash = errors.New("escalation: simulated crash after the rung's commit")

var _ handoff.Escalator = (*Engine)(nil)

// Stats count what the engine did since start (shown by the operations endpoints).
type Stats struct {
	Sent, Failed, Capped, Quiet, Skipped, Failovers atomic.Int64
}

// New builds an engine.
func New(d Deps, cfg Config) *Engine {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Ladders == nil {
		d.Ladders, _ = NewSet(nil)
	}
	if d.Redact == nil {
		d.Redact = func(_, s string) string { return s }
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	if cfg.SendAttempts <= 0 {
		cfg.SendAttempts = 3
	}
	e := &Engine{d: d, cfg: cfg, kinds: d.Channels.Kinds(), admit: newAdmission(time.Now)}
	e.rungTimeout = e.rungDeadline()
	return e
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Kinds are the channel kinds ladders may name.
func (e *Engine) Kinds() *channel.Kinds { return e.kinds }

// Channels are the configured channels.
func (e *Engine) Channels() *channel.Registry { return e.d.Channels }

func (e *Engine) now() time.Time { return e.d.Clock().UTC().Truncate(time.Microsecond) }

// Select picks the ladder for a new handoff: the organization's own ladders (put through the API)
// replace the instance's by name.
func (e *Engine) Select(ctx context.Context, tx store.OrgTx, riskLevel, action string, labels map[string]string) (*Ladder, error) {
	set, err := e.OrgSet(ctx, tx)
	if err != nil {
		return nil, err
	}
	return set.Select(riskLevel, action, labels), nil
}

// OrgSet is the instance's ladders with the organization's replacements applied.
func (e *Engine) OrgSet(ctx context.Context, tx store.OrgTx) (*Set, error) {
	stored, err := tx.Ladders(ctx)
	if err != nil {
		return nil, fmt.Errorf("escalation: load ladders: %w", err)
	}
	if len(stored) == 0 {
		return e.d.Ladders, nil
	}
	own := make([]*Ladder, 0, len(stored))
	for _, v := range stored {
		l, err := e.parseStored(v)
		if err != nil {
			// Stored ladders were validated when they were put; one that no longer parses (a stricter
			// binary) must not stop every handoff, so it is skipped loudly.
			e.d.Logger.ErrorContext(ctx, "stored ladder no longer parses; using the others", "org", tx.OrgID(), "ladder", v.Name, "version", v.Version)
			continue
		}
		own = append(own, l)
	}
	set, err := e.d.Ladders.With(own)
	if err != nil {
		// Put validates against the set, so this takes a changed file set (a second default added to
		// the files, say). Handoffs must still escalate: fall back to the files alone.
		e.d.Logger.ErrorContext(ctx, "the organization's ladders conflict with the files; using the files", "org", tx.OrgID(), "err", err)
		return e.d.Ladders, nil
	}
	return set, nil
}

func (e *Engine) parseStored(v store.LadderVersion) (*Ladder, error) {
	// Keyed by content, so a version number reused after a rolled-back put cannot return a stale parse.
	sum := sha256.Sum256(v.Source)
	key := fmt.Sprintf("%s|%s|%d|%x", v.OrgID, v.Name, v.Version, sum)
	if l, ok := e.parsed.Load(key); ok {
		return l.(*Ladder), nil
	}
	ls, err := Parse(v.Source, v.Name+".yaml", e.kinds)
	if err != nil {
		return nil, err
	}
	if len(ls) != 1 || ls[0].Name != v.Name {
		return nil, fmt.Errorf("escalation: stored ladder %s is not one ladder of that name", v.Name)
	}
	l := ls[0]
	l.Version, l.Origin = v.Version, "api"
	e.parsed.Store(key, l)
	return l, nil
}

// Start freezes the matching ladder onto a new handoff, before its insert, in the transaction that
// creates it; FirstRung runs the ladder's first rung in that transaction after the insert, so the
// handoff exists if and only if its ladder runs.
func (e *Engine) Start(ctx context.Context, tx store.OrgTx, h *store.Handoff) error {
	l, err := e.Select(ctx, tx, h.Risk, h.Action, h.Labels)
	if err != nil {
		return err
	}
	frozen, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("escalation: freeze ladder: %w", err)
	}
	h.LadderName, h.LadderVersion, h.Ladder = l.Name, l.Version, frozen
	return nil
}

// Finished schedules the rewrite of every message sent for h, in the transaction that made h final.
// Pending rungs need no cancelling: each checks the handoff first and does nothing once it is final.
func (e *Engine) Finished(ctx context.Context, tx store.OrgTx, h store.Handoff) error {
	if len(h.Ladder) == 0 {
		return nil
	}
	return tx.Enqueue(ctx, UpdateArgs{OrgID: h.OrgID, HandoffID: h.ID}, &river.InsertOpts{MaxAttempts: 5})
}

// Frozen reads the ladder frozen onto a handoff.
func Frozen(h store.Handoff) (*Ladder, error) {
	var l Ladder
	if err := json.Unmarshal(h.Ladder, &l); err != nil {
		return nil, fmt.Errorf("escalation: frozen ladder of %s: %w", h.ID, err)
	}
	return &l, nil
}

// kind looks up a kind a frozen ladder names. A kind this binary no longer knows reaches nobody;
// the send says so rather than the rung failing.
func (e *Engine) kind(name string) (channel.Kind, bool) { return e.kinds.Kind(name) }
