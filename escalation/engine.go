package escalation

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

// Limits cap what reaching people may cost; 0 turns a cap off.
type Limits struct {
	SMSPerUserHour, SMSPerUserDay     int
	CallsPerUserHour, CallsPerUserDay int
	SMSPerOrgDay, CallsPerOrgDay      int
}

// Deps are what an Engine is built from.
type Deps struct {
	Store    store.Store
	Audit    *audit.Log
	Coord    coord.Coord
	Channels *Registry
	// Ladders are the instance's ladders (from files); organizations can replace them by name.
	Ladders *Set
	// Webhooks are the configured webhook bridge names a ladder may target.
	Webhooks []string
	Logger   *slog.Logger
	Clock    func() time.Time
	// Redact cleans agent-written text (option labels) before it leaves the process.
	Redact func(orgID, s string) string
	// Expire ends a handoff whose ladder is exhausted (handoff.Service.ExpireExhausted).
	Expire func(ctx context.Context, orgID, handoffID string) error
	// ObserveLateness, if set, is told how late each step and send job started against its schedule.
	ObserveLateness func(kind string, late time.Duration)
}

// Config tunes the engine.
type Config struct {
	PublicURL   string
	SendTimeout time.Duration
	Limits      Limits
	// SendAttempts bounds how often one notification is retried when every provider errors.
	SendAttempts int
}

// Engine runs ladders: it freezes one onto each new handoff, runs each step as a durable job, reaches
// people through channels, and updates what it sent when the handoff ends.
type Engine struct {
	d   Deps
	cfg Config

	parsed sync.Map // org|name|version → *Ladder, so a stored ladder is parsed once per process

	stats Stats
}

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
	return &Engine{d: d, cfg: cfg}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

func (e *Engine) now() time.Time { return e.d.Clock().UTC().Truncate(time.Microsecond) }

// Job arguments. Each names the handoff and the rung, so River's retry of one job repeats only it.

// StepArgs runs one rung: it fans out to the rung's targets and schedules the next rung.
type StepArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
	Climb     int    `json:"climb"`
	Step      int    `json:"step"`
}

// Kind implements river.JobArgs.
func (StepArgs) Kind() string { return "escalation.step" }

// SendArgs reaches one target on one channel for one attempt.
type SendArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
	Climb     int    `json:"climb"`
	Step      int    `json:"step"`
	Channel   string `json:"channel"`
	Target    string `json:"target"` // a user id, or a team target such as webhook:teams
	Attempt   int    `json:"attempt"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "escalation.send" }

func (a SendArgs) key() string {
	return fmt.Sprintf("%d.%d.%s.%s.%d", a.Climb, a.Step, a.Channel, a.Target, a.Attempt)
}

// EndArgs ends an exhausted ladder.
type EndArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

// Kind implements river.JobArgs.
func (EndArgs) Kind() string { return "escalation.end" }

// UpdateArgs rewrites every message sent for a handoff once it is final.
type UpdateArgs struct {
	OrgID     string `json:"org_id"`
	HandoffID string `json:"handoff_id"`
}

// Kind implements river.JobArgs.
func (UpdateArgs) Kind() string { return "escalation.update" }

// RegisterWorkers adds the engine's job workers.
func (e *Engine) RegisterWorkers(w *river.Workers) {
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, j *river.Job[StepArgs]) error {
		e.observe(j.Kind, j.ScheduledAt)
		return e.RunStep(ctx, j.Args)
	}))
	river.AddWorker(w, &sendWorker{e: e})
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, j *river.Job[EndArgs]) error { return e.RunEnd(ctx, j.Args) }))
	river.AddWorker(w, river.WorkFunc(func(ctx context.Context, j *river.Job[UpdateArgs]) error { return e.RunUpdate(ctx, j.Args) }))
}

func (e *Engine) observe(kind string, scheduled time.Time) {
	if e.d.ObserveLateness != nil {
		e.d.ObserveLateness(kind, time.Since(scheduled))
	}
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	e *Engine
}

func (w *sendWorker) Work(ctx context.Context, j *river.Job[SendArgs]) error {
	w.e.observe(j.Kind, j.ScheduledAt)
	return w.e.RunSend(ctx, j.Args, j.Attempt >= j.MaxAttempts)
}

// NextRetry retries a notification soon: a person is waiting for it.
func (w *sendWorker) NextRetry(j *river.Job[SendArgs]) time.Time {
	return time.Now().Add(time.Duration(j.Attempt) * 5 * time.Second)
}

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
	ls, err := Parse(v.Source, v.Name+".yaml")
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

// Start freezes the matching ladder onto a new handoff and schedules its first rung, in the
// transaction that creates the handoff: the handoff exists if and only if its ladder will run.
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
	return tx.Enqueue(ctx, StepArgs{OrgID: h.OrgID, HandoffID: h.ID}, nil) // due now: a ScheduledAt would wait for River's scheduler
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

// RunStep fans one rung out to its targets and schedules the next rung (or the end), all in one
// transaction guarded by a step marker, so a rung that runs twice (a retry, a second replica) adds
// nothing the second time.
func (e *Engine) RunStep(ctx context.Context, a StepArgs) error {
	var fanned int
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		h, err := tx.HandoffByID(ctx, a.HandoffID)
		if err != nil || h.Status.Final() {
			return err
		}
		l, err := Frozen(h)
		if err != nil {
			return err
		}
		if a.Step >= len(l.Steps) || a.Climb > l.Repeat {
			return fmt.Errorf("escalation: rung %d.%d is outside ladder %s", a.Climb, a.Step, l.Name)
		}
		now := e.now()
		_, claimed, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: fmt.Sprintf("step.%d.%d", a.Climb, a.Step),
			Climb: a.Climb, Step: a.Step, Channel: "step", Target: "-", State: store.SendStepDone, CreatedAt: now, UpdatedAt: now})
		if err != nil || !claimed {
			return err
		}
		if fanned, err = e.fanOut(ctx, tx, h, l, a, now); err != nil {
			return err
		}
		if c, s, ok := l.Next(a.Climb, a.Step); ok {
			return tx.Enqueue(ctx, StepArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: c, Step: s},
				&river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.Offset(c, s))})
		}
		if l.End == EndExpire {
			return tx.Enqueue(ctx, EndArgs{OrgID: h.OrgID, HandoffID: h.ID}, &river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.EndOffset())})
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // the organization or handoff was erased
	}
	if err == nil && fanned > 0 {
		e.d.Logger.InfoContext(ctx, "escalation step", "org", a.OrgID, "handoff", a.HandoffID, "climb", a.Climb, "step", a.Step, "sends", fanned)
	}
	return err
}

// fanOut enqueues one send per (channel, target) of the rung. People in quiet hours, and people
// without the contact method a channel needs, get a send row that says so instead, so the
// escalation's timeline shows why they were not reached.
func (e *Engine) fanOut(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, now time.Time) (int, error) {
	step := l.Steps[a.Step]
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	enqueue := func(channel, target string) error {
		n++
		return tx.Enqueue(ctx, SendArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: a.Climb, Step: a.Step, Channel: channel, Target: target},
			&river.InsertOpts{MaxAttempts: e.cfg.SendAttempts})
	}
	mark := func(channel, target string, st store.SendState, detail string) error {
		args := SendArgs{Climb: a.Climb, Step: a.Step, Channel: channel, Target: target}
		_, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: args.key(), Climb: a.Climb, Step: a.Step, Channel: channel,
			Target: target, State: st, Detail: detail, CreatedAt: now, UpdatedAt: now})
		return err
	}
	var people []store.User
	for _, t := range step.Targets {
		if t.Team() {
			if slices.Contains(step.Channels, string(t.Kind)) {
				if err := enqueue(string(t.Kind), t.String()); err != nil {
					return n, err
				}
			}
			continue
		}
		for _, u := range users {
			if u.Active && u.Role.CanDecide() && targets(t, u) && !slices.ContainsFunc(people, func(p store.User) bool { return p.ID == u.ID }) {
				people = append(people, u)
			}
		}
	}
	quietOK := step.Quiet == QuietIgnore || (step.OverrideQuietAt != "" && atLeast(h.Risk, step.OverrideQuietAt))
	for _, u := range people {
		for _, ch := range step.Channels {
			if ch == KindWebhook {
				continue // bridges are reached through webhook: targets only
			}
			if contact(u, ch) == "" {
				e.stats.Skipped.Add(1)
				if err := mark(ch, u.ID, store.SendSkipped, "no_contact"); err != nil {
					return n, err
				}
				continue
			}
			if ch != KindConsole && !quietOK {
				if q, set, _ := ParseQuietHours(u.QuietHours); set && q.Contains(now, LoadLocation(u.Timezone)) {
					e.stats.Quiet.Add(1)
					if err := mark(ch, u.ID, store.SendQuiet, "quiet_hours"); err != nil {
						return n, err
					}
					continue
				}
			}
			if err := enqueue(ch, u.ID); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func atLeast(level, floor string) bool {
	l, err1 := risk.ParseLevel(level)
	f, err2 := risk.ParseLevel(floor)
	return err1 == nil && err2 == nil && l >= f
}

// targets reports whether a person target names u.
func targets(t Target, u store.User) bool {
	switch t.Kind {
	case TargetUser:
		return strings.EqualFold(t.Value, u.Email)
	case TargetGroup:
		return slices.Contains(u.Groups, t.Value)
	case TargetRole:
		return string(u.Role) == t.Value
	}
	return false
}

// contact is where a person is reached on a channel kind; "" when they have no such method.
func contact(u store.User, kind string) string {
	switch kind {
	case KindConsole:
		return u.ID
	case KindSlack:
		return u.SlackID
	case KindTelegram:
		return u.TelegramID
	case KindSMS, KindCall:
		return u.Phone
	}
	return ""
}

// RunSend reaches one target. The send row claimed first makes it idempotent: a retry after the
// provider accepted does nothing; a retry after a crash mid-call sends again with the same key, which
// receivers use to drop the duplicate. last is true on the job's final attempt.
func (e *Engine) RunSend(ctx context.Context, a SendArgs, last bool) error {
	key := a.key()
	var (
		h       store.Handoff
		l       *Ladder
		rcpt    Recipient
		tok     string
		skip    bool
		retried bool
	)
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		var err error
		if h, err = tx.HandoffByID(ctx, a.HandoffID); err != nil {
			return err
		}
		now := e.now()
		if h.Status.Final() {
			skip = true
			// A retry that finds the handoff decided closes the row it left open.
			_, err := tx.SetSendState(ctx, h.ID, key, []store.SendState{store.SendSending},
				store.SendUpdate{State: store.SendSkipped, Detail: "already_final", At: now})
			return err
		}
		if l, err = Frozen(h); err != nil {
			return err
		}
		have, claimed, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: key, Climb: a.Climb, Step: a.Step, Attempt: a.Attempt,
			Channel: a.Channel, Target: a.Target, State: store.SendSending, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return err
		}
		if !claimed && have.State != store.SendSending {
			skip = true // done before: sent, capped, failed for good...
			return nil
		}
		retried = !claimed && have.Detail == "provider_error"
		if rcpt, err = e.recipient(ctx, tx, a); errors.Is(err, errCannotDecide) {
			// Deactivated or made a viewer after the rung fanned out: nobody to ask any more.
			skip = true
			_, err = tx.SetSendState(ctx, h.ID, key, []store.SendState{store.SendSending},
				store.SendUpdate{State: store.SendSkipped, Detail: "cannot_decide", At: now})
			return err
		}
		if err != nil {
			return err
		}
		if rcpt.UserID != "" {
			if ch := e.d.Channels.Providers(a.Channel, nil); len(ch) > 0 && ch[0].TakesDecisions() {
				if tok, err = mintToken(ctx, tx, h, rcpt.UserID, a.Channel, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || skip {
		return err
	}
	step := l.Steps[a.Step]
	if capped := e.capped(ctx, a, rcpt); capped != "" {
		e.stats.Capped.Add(1)
		e.d.Logger.WarnContext(ctx, "escalation capped", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel, "cap", capped)
		return e.setState(ctx, a, []store.SendState{store.SendSending}, store.SendUpdate{State: store.SendCapped, Detail: capped})
	}
	providers := e.d.Channels.Providers(a.Channel, step.Providers[a.Channel])
	if len(providers) == 0 {
		e.stats.Failed.Add(1)
		e.d.Logger.WarnContext(ctx, "no provider configured for channel", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel)
		return e.setState(ctx, a, nil, store.SendUpdate{State: store.SendFailed, Detail: "no_provider"})
	}
	n := Notification{Key: h.ID + "/" + key, OrgID: h.OrgID, HandoffID: h.ID, Action: h.Action, Risk: h.Risk, Gist: h.Gist,
		ConsoleURL: e.cfg.PublicURL + "/console/handoffs/" + h.ID, ExpiresAt: h.ExpiresAt, Ladder: l.Name,
		Climb: a.Climb, Step: a.Step, StepName: step.Name, Attempt: a.Attempt, Recipient: rcpt, Token: tok}
	for _, o := range h.Options {
		o.Label = e.d.Redact(h.OrgID, o.Label)
		n.Options = append(n.Options, o)
	}
	var d Delivery
	var used Channel
	for i, p := range providers {
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		d, err = p.Notify(sctx, n)
		cancel()
		if err == nil {
			used = p
			break
		}
		// Provider errors can quote what was sent; only the kind and provider are logged.
		e.d.Logger.WarnContext(ctx, "provider failed", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel, "provider", p.Provider(),
			"next", i+1 < len(providers))
		if i+1 < len(providers) {
			e.stats.Failovers.Add(1)
		}
	}
	if used == nil {
		if !last {
			// Still sending, but the escalation view shows why it has not arrived yet.
			if err := e.setState(ctx, a, []store.SendState{store.SendSending}, store.SendUpdate{State: store.SendSending, Detail: "provider_error"}); err != nil {
				return err
			}
			return fmt.Errorf("escalation: every %s provider failed", a.Channel)
		}
		e.stats.Failed.Add(1)
		return e.setState(ctx, a, []store.SendState{store.SendSending}, store.SendUpdate{State: store.SendFailed, Detail: "provider_error"})
	}
	if d.State == "" {
		d.State = store.SendSent
	}
	e.stats.Sent.Add(1)
	e.d.Logger.InfoContext(ctx, "notified", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel, "provider", used.Provider(),
		"climb", a.Climb, "step", a.Step, "attempt", a.Attempt, "state", d.State)
	u := store.SendUpdate{State: d.State, Provider: used.Provider(), Ref: d.Ref}
	if retried {
		u.Detail = "retried" // replaces provider_error: it got there in the end
	}
	return e.settle(ctx, a, step, []store.SendState{store.SendSending}, u)
}

// settle records a send's outcome and, for a call nobody answered, schedules the redial — in one
// transaction, and only if this caller moved the state, so a duplicate report redials once.
func (e *Engine) settle(ctx context.Context, a SendArgs, step Step, from []store.SendState, u store.SendUpdate) error {
	u.At = e.now()
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		moved, err := tx.SetSendState(ctx, a.HandoffID, a.key(), from, u)
		if err != nil || !moved {
			return err
		}
		if a.Channel != KindCall || (u.State != store.SendNoAnswer && u.State != store.SendBusy) || a.Attempt >= step.Redial.Times {
			return nil
		}
		next := a
		next.Attempt++
		return tx.Enqueue(ctx, next, &river.InsertOpts{ScheduledAt: u.At.Add(step.Redial.Gap), MaxAttempts: e.cfg.SendAttempts})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (e *Engine) setState(ctx context.Context, a SendArgs, from []store.SendState, u store.SendUpdate) error {
	return e.settle(ctx, a, Step{}, from, u)
}

// Report records a delivery outcome a provider learned after Notify returned (a call's status
// callback). A call that rang out is redialled if its rung says so.
func (e *Engine) Report(ctx context.Context, orgID, handoffID, key string, st store.SendState) error {
	var (
		send  store.Send
		h     store.Handoff
		found bool
	)
	err := e.d.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		var err error
		if h, err = tx.HandoffByID(ctx, handoffID); err != nil {
			return err
		}
		sends, err := tx.ListSends(ctx, handoffID)
		for _, s := range sends {
			if s.Key == key {
				send, found = s, true
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if !found {
		return store.ErrNotFound
	}
	l, err := Frozen(h)
	if err != nil {
		return err
	}
	a := SendArgs{OrgID: orgID, HandoffID: handoffID, Climb: send.Climb, Step: send.Step, Channel: send.Channel, Target: send.Target, Attempt: send.Attempt}
	var step Step
	if a.Step < len(l.Steps) && !h.Status.Final() {
		step = l.Steps[a.Step]
	}
	return e.settle(ctx, a, step, []store.SendState{store.SendSending, store.SendSent, store.SendDelivered}, store.SendUpdate{State: st})
}

var errCannotDecide = errors.New("escalation: the person can no longer decide")

// recipient resolves a send's target to an address on its channel.
func (e *Engine) recipient(ctx context.Context, tx store.OrgTx, a SendArgs) (Recipient, error) {
	if kind, value, ok := strings.Cut(a.Target, ":"); ok {
		if kind != a.Channel {
			return Recipient{}, fmt.Errorf("escalation: target %s on channel %s", kind, a.Channel)
		}
		return Recipient{Name: a.Target, Address: value, Timezone: time.UTC}, nil
	}
	u, err := tx.UserByID(ctx, a.Target)
	if err != nil {
		return Recipient{}, err
	}
	if !u.Active || !u.Role.CanDecide() {
		return Recipient{}, errCannotDecide
	}
	return Recipient{UserID: u.ID, Name: u.Name, Address: contact(u, a.Channel), Timezone: LoadLocation(u.Timezone)}, nil
}

// capped checks the SMS and call caps for a send and counts it against them; it returns the name of
// the cap that stopped it, or "". Caps are checked before any is counted, so a refused send does not
// use up another window.
func (e *Engine) capped(ctx context.Context, a SendArgs, r Recipient) string {
	type window struct {
		name  string
		key   string
		limit int
		per   time.Duration
	}
	lim := e.cfg.Limits
	var ws []window
	switch a.Channel {
	case KindSMS:
		ws = []window{{"sms_per_user_hour", "u:" + r.UserID + ":h", lim.SMSPerUserHour, time.Hour},
			{"sms_per_user_day", "u:" + r.UserID + ":d", lim.SMSPerUserDay, 24 * time.Hour},
			{"sms_per_org_day", "o:d", lim.SMSPerOrgDay, 24 * time.Hour}}
	case KindCall:
		ws = []window{{"calls_per_user_hour", "u:" + r.UserID + ":h", lim.CallsPerUserHour, time.Hour},
			{"calls_per_user_day", "u:" + r.UserID + ":d", lim.CallsPerUserDay, 24 * time.Hour},
			{"calls_per_org_day", "o:d", lim.CallsPerOrgDay, 24 * time.Hour}}
	default:
		return ""
	}
	prefix := "esc:" + a.Channel + ":" + a.OrgID + ":"
	for _, w := range ws {
		if w.limit <= 0 {
			continue
		}
		l, err := e.d.Coord.Peek(ctx, prefix+w.key, int64(w.limit), w.per)
		if err != nil {
			// Without the counters the caps cannot be kept; refusing is the cheaper mistake than an
			// unbounded phone bill, and the ladder goes on to its next rung.
			e.d.Logger.WarnContext(ctx, "rate limit check failed", "err", err)
			return "limits_unavailable"
		}
		if !l.Allowed {
			return w.name
		}
	}
	for _, w := range ws {
		if w.limit > 0 {
			if _, err := e.d.Coord.Hit(ctx, prefix+w.key, int64(w.limit), w.per); err != nil {
				return "limits_unavailable"
			}
		}
	}
	return ""
}

// RunEnd expires a handoff whose ladder ran out without a decision: never an implicit approve or deny.
func (e *Engine) RunEnd(ctx context.Context, a EndArgs) error {
	err := e.d.Expire(ctx, a.OrgID, a.HandoffID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// RunUpdate rewrites every delivered message of a final handoff with its outcome.
func (e *Engine) RunUpdate(ctx context.Context, a UpdateArgs) error {
	var (
		h     store.Handoff
		sends []store.Send
		users = map[string]store.User{}
	)
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		var err error
		if h, err = tx.HandoffByID(ctx, a.HandoffID); err != nil {
			return err
		}
		if sends, err = tx.ListSends(ctx, a.HandoffID); err != nil {
			return err
		}
		us, err := tx.ListUsers(ctx)
		for _, u := range us {
			users[u.ID] = u
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || !h.Status.Final() {
		return err
	}
	var errs []error
	for _, s := range sends {
		switch s.State {
		case store.SendSent, store.SendDelivered, store.SendAnswered, store.SendNoAnswer, store.SendBusy:
		default:
			continue
		}
		ch := e.d.Channels.Provider(s.Channel, s.Provider)
		if ch == nil {
			continue
		}
		r := Recipient{Name: s.Target, Timezone: time.UTC}
		if u, ok := users[s.Target]; ok {
			r = Recipient{UserID: u.ID, Name: u.Name, Address: contact(u, s.Channel), Timezone: LoadLocation(u.Timezone)}
		} else if _, v, ok := strings.Cut(s.Target, ":"); ok {
			r.Address = v
		}
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		err := ch.Update(sctx, Update{Key: h.ID + "/" + s.Key, OrgID: h.OrgID, HandoffID: h.ID, Ref: s.Ref, Recipient: r,
			Status: h.Status, Text: OutcomeText(h, r.Timezone)})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("update %s via %s: %w", s.Channel, s.Provider, err))
		}
	}
	return errors.Join(errs...)
}

// OutcomeText is the line a message shows once the handoff is final, e.g.
// "Approved by Ana via call, 14:03 CET".
func OutcomeText(h store.Handoff, loc *time.Location) string {
	d := h.Decision
	if d == nil {
		return "No longer pending"
	}
	at := d.DecidedAt.In(loc).Format("15:04 MST")
	switch h.Status {
	case store.StatusExpired:
		return "Expired without a decision, " + at
	case store.StatusCancelled:
		return "Cancelled, " + at
	}
	word := "Denied"
	if h.Status == store.StatusApproved {
		word = "Approved"
	}
	by := d.ByName
	if by == "" {
		by = "someone"
	}
	return fmt.Sprintf("%s by %s via %s, %s", word, by, d.Channel, at)
}

func mintToken(ctx context.Context, tx store.OrgTx, h store.Handoff, userID, channel string, now time.Time) (string, error) {
	tok, err := auth.NewToken(auth.DecisionTokenPrefix)
	if err == nil {
		err = tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, UserID: userID, Channel: channel,
			CreatedAt: now, ExpiresAt: h.ExpiresAt})
	}
	if err != nil {
		return "", fmt.Errorf("escalation: decision token: %w", err)
	}
	return tok.Plain, nil
}
