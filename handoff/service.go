package handoff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/netguard"
	"github.com/ony-ai/ony/internal/summarize"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/redact"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

// Config tunes the service.
type Config struct {
	DefaultTimeout time.Duration
	// MaxTimeout caps every organization's own maximum.
	MaxTimeout      time.Duration
	MaxPayloadBytes int
	// PublicURL is where people reach this instance; console links are built on it.
	PublicURL string
	// CallbackTimeout bounds one callback POST; CallbackAttempts bounds retries.
	CallbackTimeout  time.Duration
	CallbackAttempts int
	// CallbackPolicy says which non-public addresses callbacks may reach (the zero value: none). It
	// refuses a callback_url that names one outright at create time, and guards the default client.
	CallbackPolicy netguard.Policy
	// WaitRecheck is the longest a waiter goes without re-reading the database when no notification
	// comes, in case one was lost (a replica crashed between commit and publish). Each pause is drawn
	// between half and all of it.
	WaitRecheck time.Duration
}

// Service creates, decides, cancels and expires handoffs.
type Service struct {
	store  store.Store
	audit  *audit.Log
	risk   *risk.Engine
	redact *redact.Redactor
	sum    summarize.Summarizer
	keys   *keyring.Keyring
	coord  coord.Coord
	log    *slog.Logger
	cfg    Config
	now    func() time.Time
	client *http.Client
	esc    Escalator
	// admission gates creates; nil admits every one.
	admission Admission
	stepUp    StepUpChecker
	// waits are this process's open long-polls, which a decision made here answers directly.
	waits *waiters
	// metrics counts handoffs and callbacks; nil counts nothing.
	metrics *metrics.Recorder
}

// Escalator runs each handoff's escalation ladder. Its calls happen inside the transaction that
// makes the change, so a handoff exists with its first rung claimed, or not at all.
type Escalator interface {
	// Start freezes the matching ladder onto h, before it is inserted.
	Start(ctx context.Context, tx store.OrgTx, h *store.Handoff) error
	// FirstRung runs h's first rung after its insert, in the same transaction, on behalf of the agent
	// named agent. The func it returns is called once that transaction has committed, to make the
	// rung's sends; it does not wait for them.
	FirstRung(ctx context.Context, tx store.OrgTx, h store.Handoff, agent string) (func(), error)
	// Finished is told that h just became final, to update what was sent about it.
	Finished(ctx context.Context, tx store.OrgTx, h store.Handoff) error
	// Ended reports whether h's ladder may end now: its last rung has run and what it sent has
	// settled. The ladder's end waits while it is false, but never past h's own expires_at.
	Ended(ctx context.Context, tx store.OrgTx, h store.Handoff) (bool, error)
}

// Admission decides when a create may start its transaction. The func it returns ends the
// create's turn.
type Admission interface {
	Admit(ctx context.Context) (func(), error)
}

// Deps are what the service is built from.
type Deps struct {
	Store store.Store
	Audit *audit.Log
	Risk  *risk.Engine
	// Redactor builds the secret-free gist; nil means redact.Default().
	Redactor *redact.Redactor
	// Summarizer, if set, refines the gist with a model in a job after the handoff is created.
	Summarizer summarize.Summarizer
	Keyring    *keyring.Keyring
	Coord      coord.Coord
	Logger     *slog.Logger
	// Escalator runs each handoff's ladder; nil means none (handoffs wait in the API only).
	Escalator Escalator
	// Admission, if set, is asked before each create's transaction; nil admits every create.
	Admission Admission
	// Clock is injectable for tests; nil means time.Now. HTTPClient posts callbacks; nil means a
	// client guarded by Config.CallbackPolicy with CallbackTimeout. A client given here is used as it
	// is, so it should be one the policy built.
	Clock      func() time.Time
	HTTPClient *http.Client
	// StepUp, when set, makes approvals at the risks the org names need a TOTP code (issue 13).
	StepUp StepUpChecker
	// Metrics counts handoffs created and finished, and callback deliveries; nil records nothing.
	Metrics *metrics.Recorder
}

// NewService wires a service.
func NewService(d Deps, cfg Config) *Service {
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = time.Hour
	}
	if cfg.MaxPayloadBytes <= 0 {
		cfg.MaxPayloadBytes = 1 << 20
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 24 * time.Hour
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = 10 * time.Second
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = 12
	}
	if cfg.WaitRecheck <= 0 {
		cfg.WaitRecheck = 2 * time.Second
	}
	s := &Service{store: d.Store, audit: d.Audit, risk: d.Risk, redact: d.Redactor, sum: d.Summarizer, keys: d.Keyring, coord: d.Coord, log: d.Logger, cfg: cfg, now: d.Clock, client: d.HTTPClient, esc: d.Escalator, admission: d.Admission, stepUp: d.StepUp,
		metrics: d.Metrics, waits: newWaiters()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.redact == nil {
		s.redact = redact.Default()
	}
	if s.client == nil {
		s.client = cfg.CallbackPolicy.Client(nil, cfg.CallbackTimeout)
	}
	return s
}

// GistRunes bounds the gist channels carry.
const GistRunes = 280

// FingerprintKey is the per-organization key under which redaction fingerprints are computed, so an
// approver can tell two tokens apart without seeing either, and fingerprints do not correlate across
// organizations.
func (s *Service) FingerprintKey(orgID string) []byte { return FingerprintKey(s.keys, orgID) }

// FingerprintKey is the per-organization fingerprint key derived from keys.
func FingerprintKey(keys *keyring.Keyring, orgID string) []byte {
	return keys.Derive("ony redact fingerprint v1", orgID)
}

// TextRedactor returns what removes secrets from a short agent-written text (an option label)
// before a channel carries it, with the organization's fingerprints.
func TextRedactor(r *redact.Redactor, keys *keyring.Keyring) func(orgID, text string) string {
	if r == nil {
		r = redact.Default()
	}
	return func(orgID, text string) string {
		out, _ := r.Redact(FingerprintKey(keys, orgID), text)
		return out
	}
}

// Actor is who is acting: a person (session) or an agent (device token).
type Actor struct {
	OrgID string
	Kind  store.ActorKind
	ID    string
	Name  string
	Role  store.Role // people only
}

// Created is the result of Create.
type Created struct {
	Handoff store.Handoff
	// Replayed is true when an Idempotency-Key returned an earlier handoff.
	Replayed bool
}

func (s *Service) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Create records a new handoff from an agent. idemKey may be empty.
func (s *Service) Create(ctx context.Context, dev Actor, req CreateRequest, idemKey string) (Created, error) {
	if dev.Kind != store.ActorDevice {
		return Created{}, problem.New(problem.Forbidden, "agents_only", "only agents (device tokens) create handoffs")
	}
	if len(idemKey) > MaxIdemKeyLen {
		return Created{}, invalid("invalid_idempotency_key", "Idempotency-Key is at most %d characters", MaxIdemKeyLen)
	}
	if err := req.normalize(s.cfg.MaxPayloadBytes); err != nil {
		return Created{}, err
	}
	if err := s.checkCallbackHost(req.CallbackURL); err != nil {
		return Created{}, err
	}
	fp := req.fingerprint()
	// Risk comes from what the server sees; nothing the agent claims about risk reaches this call.
	in := risk.Input{Action: req.Action, Labels: req.Labels}
	if req.Payload != nil {
		in.PayloadKind, in.Payload = req.Payload.Kind, req.Payload.Content
	}
	assessed := s.risk.Derive(in)
	// What needs no database is done before the transaction: on SQLite writes take turns, and every
	// microsecond inside one is a microsecond every other writer waits.
	id := uuid.Must(uuid.NewV7()).String()
	gist := redact.Gist(s.redact, s.FingerprintKey(dev.OrgID), req.Action, assessed.Level.String(), req.Title, req.Summary, GistRunes)
	var sealed []byte
	if req.Payload != nil {
		var err error
		if sealed, err = s.keys.Seal([]byte(req.Payload.Content), payloadAAD(dev.OrgID, id)); err != nil {
			return Created{}, fmt.Errorf("handoff: seal payload: %w", err)
		}
	}
	titleHash := audit.TitleHash(req.Title)

	if s.admission != nil {
		done, err := s.admission.Admit(ctx)
		if err != nil {
			return Created{}, err
		}
		defer done()
	}
	var out Created
	var sendFirst func()
	err := s.store.InOrg(ctx, dev.OrgID, func(tx store.OrgTx) error {
		sendFirst = nil
		if idemKey != "" {
			h, found, err := replay(ctx, tx, dev.ID, idemKey, fp)
			if err != nil || found {
				out = Created{Handoff: h, Replayed: found}
				return err
			}
		}
		org, err := tx.Org(ctx)
		if err != nil {
			return fmt.Errorf("handoff: load org: %w", err)
		}
		maxT := min(org.MaxTimeout, s.cfg.MaxTimeout)
		timeout := req.Timeout
		if timeout == 0 {
			timeout = min(s.cfg.DefaultTimeout, maxT)
		}
		if timeout > maxT {
			return invalid("timeout_too_long", "timeout %s is over the maximum of %s", timeout, maxT)
		}
		now := s.clock()
		h := store.Handoff{
			OrgID: dev.OrgID, ID: id, DeviceID: dev.ID,
			Action: req.Action, Title: req.Title, Summary: req.Summary,
			Risk: assessed.Level.String(), RiskReasons: reasonStrings(assessed.Reasons),
			Options: req.Options, Labels: req.Labels, CallbackURL: req.CallbackURL,
			Gist: gist, Status: store.StatusPending, CreatedAt: now, ExpiresAt: now.Add(timeout),
		}
		if req.Payload != nil {
			h.PayloadKind, h.PayloadSize, h.PayloadSealed, h.PayloadKept = req.Payload.Kind, len(req.Payload.Content), sealed, true
		}
		if s.esc != nil {
			if err := s.esc.Start(ctx, tx, &h); err != nil {
				return fmt.Errorf("handoff: escalation: %w", err)
			}
		}
		// The title is the agent's free text and could carry a secret: the log keeps only its hash.
		err = s.audit.AppendWith(ctx, tx, audit.Event{Type: audit.HandoffCreated, At: now,
			Actor: audit.Actor{Kind: string(store.ActorDevice), ID: dev.ID}, Subject: audit.Subject{Kind: "handoff", ID: h.ID},
			Channel: "api", Details: &audit.Details{Action: h.Action, Risk: h.Risk, Reasons: h.RiskReasons, TitleHash: titleHash}},
			func(at time.Time, record []byte) error { return tx.InsertHandoffLogged(ctx, h, at, record) })
		if err != nil {
			return fmt.Errorf("handoff: insert: %w", err)
		}
		if idemKey != "" {
			err := tx.PutIdempotencyRecord(ctx, store.Idempotency{DeviceID: dev.ID, Key: idemKey, RequestHash: fp, HandoffID: h.ID, CreatedAt: now})
			if err != nil {
				return fmt.Errorf("handoff: idempotency record: %w", err)
			}
		}
		if s.esc != nil {
			// Last, so that the log holds the handoff's creation before anything its rung records.
			if sendFirst, err = s.esc.FirstRung(ctx, tx, h, dev.Name); err != nil {
				return fmt.Errorf("handoff: escalation: %w", err)
			}
		}
		// No expiry job: the expiry sweep (expiry.go) ends it once expires_at has passed.
		if s.sum != nil {
			if err := tx.Enqueue(ctx, SummarizeArgs{OrgID: h.OrgID, HandoffID: h.ID}, &river.InsertOpts{MaxAttempts: 3}); err != nil {
				return err
			}
		}
		out = Created{Handoff: h}
		return nil
	})
	if err != nil {
		sendFirst = nil // its claims were rolled back
	}
	if errors.Is(err, store.ErrConflict) && idemKey != "" {
		// Two requests with one key raced; the other committed first. Answer as it did.
		err = s.store.InOrg(ctx, dev.OrgID, func(tx store.OrgTx) error {
			h, found, err := replay(ctx, tx, dev.ID, idemKey, fp)
			if err == nil && !found {
				err = fmt.Errorf("handoff: idempotency conflict without a record")
			}
			out = Created{Handoff: h, Replayed: true}
			return err
		})
	}
	if err != nil {
		return Created{}, sealedProblem(err)
	}
	if sendFirst != nil {
		sendFirst()
	}
	if !out.Replayed {
		s.metrics.HandoffCreated(out.Handoff.Risk)
		s.log.InfoContext(ctx, "handoff created", "org", dev.OrgID, "handoff", out.Handoff.ID, "action", out.Handoff.Action,
			"risk", out.Handoff.Risk, "device", dev.ID)
	}
	return out, nil
}

func replay(ctx context.Context, tx store.OrgTx, deviceID, key string, fp []byte) (store.Handoff, bool, error) {
	rec, err := tx.IdempotencyRecord(ctx, deviceID, key)
	if errors.Is(err, store.ErrNotFound) {
		return store.Handoff{}, false, nil
	}
	if err != nil {
		return store.Handoff{}, false, err
	}
	if !bytes.Equal(rec.RequestHash, fp) {
		return store.Handoff{}, false, problem.New(problem.Conflict, "idempotency_key_reused",
			"this Idempotency-Key was used with a different request")
	}
	h, err := tx.HandoffByID(ctx, rec.HandoffID)
	return h, err == nil, err
}

func reasonStrings(rs []risk.Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// Get returns a handoff the actor may see: people see their org's, agents only their own. It reads
// in a read-only transaction, which on SQLite runs beside the writer instead of queueing behind it:
// a waiter woken by a decision re-reads through here.
func (s *Service) Get(ctx context.Context, a Actor, id string) (store.Handoff, error) {
	var h store.Handoff
	err := s.store.ReadOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		var err error
		h, err = visible(ctx, tx, a, id)
		return err
	})
	return h, err
}

func visible(ctx context.Context, tx store.OrgTx, a Actor, id string) (store.Handoff, error) {
	if _, err := uuid.Parse(id); err != nil {
		return store.Handoff{}, notFound()
	}
	h, err := tx.HandoffByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Kind == store.ActorDevice && h.DeviceID != a.ID) {
		return store.Handoff{}, notFound()
	}
	return h, err
}

func notFound() error { return problem.New(problem.NotFound, "handoff_not_found", "no such handoff") }

// List returns the org's handoffs, newest first. Agents see only their own.
func (s *Service) List(ctx context.Context, a Actor, f store.HandoffFilter) ([]store.Handoff, error) {
	if f.Status != "" && !f.Status.Valid() {
		return nil, invalid("invalid_status", "status must be pending, approved, denied, expired or cancelled")
	}
	if f.Limit < 0 || f.Limit > 500 {
		return nil, invalid("invalid_limit", "limit is 1 to 500")
	}
	if a.Kind == store.ActorDevice {
		// In the query, not after it, so the limit counts only the agent's own handoffs.
		f.DeviceID = a.ID
	}
	var out []store.Handoff
	err := s.store.ReadOrg(ctx, a.OrgID, func(tx store.OrgTx) (err error) {
		out, err = tx.ListHandoffs(ctx, f)
		return err
	})
	return out, err
}

// Decide records a person's answer. The first decision wins; a later one is refused with who won.
func (s *Service) Decide(ctx context.Context, a Actor, id, optionID, comment, channel string) (store.Handoff, error) {
	return s.DecideStepUp(ctx, a, id, optionID, comment, channel, "")
}

// decide records the answer in one transaction. Unless stepped (the approval's step-up was checked,
// or there is no checker), an approval leaves it unrecorded with stepUpFirst.
func (s *Service) decide(ctx context.Context, a Actor, id, optionID, comment, channel string, stepped bool) (store.Handoff, error) {
	if a.Kind != store.ActorUser {
		return store.Handoff{}, problem.New(problem.Forbidden, "people_only", "only people decide handoffs; an agent cannot approve its own request")
	}
	if !a.Role.CanDecide() {
		return store.Handoff{}, problem.New(problem.Forbidden, "role_cannot_decide", "your role (%s) can view handoffs but not decide them", a.Role)
	}
	if len(comment) > 2000 || hasControl(comment, true) {
		return store.Handoff{}, invalid("invalid_comment", "comment is at most 2000 characters without control characters")
	}
	return s.finish(ctx, a.OrgID, id, func(_ store.OrgTx, h store.Handoff) (store.Status, store.Decision, error) {
		opt, st, err := choose(h, optionID)
		if err != nil {
			return "", store.Decision{}, err
		}
		if opt.Approves && !stepped {
			return "", store.Decision{}, stepUpFirst{risk: h.Risk}
		}
		return st, store.Decision{OptionID: opt.ID, ByKind: store.ActorUser, ByID: a.ID, ByName: a.Name, Channel: channel, Comment: comment}, nil
	}, a)
}

// Cancel withdraws a pending handoff: by the agent that asked, or by a person who may decide.
func (s *Service) Cancel(ctx context.Context, a Actor, id, reason string) (store.Handoff, error) {
	if a.Kind == store.ActorUser && !a.Role.CanDecide() {
		return store.Handoff{}, problem.New(problem.Forbidden, "role_cannot_decide", "your role (%s) cannot cancel handoffs", a.Role)
	}
	if len(reason) > 2000 || hasControl(reason, true) {
		return store.Handoff{}, invalid("invalid_reason", "reason is at most 2000 characters without control characters")
	}
	return s.finish(ctx, a.OrgID, id, func(store.OrgTx, store.Handoff) (store.Status, store.Decision, error) {
		return store.StatusCancelled, store.Decision{ByKind: a.Kind, ByID: a.ID, ByName: a.Name, Channel: "api", Comment: reason}, nil
	}, a)
}

// Expire ends a handoff nobody decided in time. It is a no-op when the handoff is already final or
// not yet due (a job that runs early, e.g. after a clock step, must not expire it).
func (s *Service) Expire(ctx context.Context, orgID, id string) (store.Handoff, error) {
	return s.expire(ctx, orgID, id, "expiry", false)
}

var errNotDue = errors.New("handoff: not yet due")

// ErrLadderUnderWay is returned by ExpireExhausted while the ladder's last rung is still being
// notified; the ladder's end is tried again shortly.
var ErrLadderUnderWay = errors.New("handoff: the ladder's last rung is still under way")

// ExpireExhausted ends a handoff whose escalation ladder ran out before its timeout: it expires, which
// is never read as a person's no. It does not overtake the ladder's last rung: while the escalator
// says the rung's notifications have not settled it returns ErrLadderUnderWay, until expires_at.
func (s *Service) ExpireExhausted(ctx context.Context, orgID, id string) error {
	_, err := s.expire(ctx, orgID, id, "ladder", true)
	if isNotFound(err) {
		return nil
	}
	return err
}

// expire ends a pending handoff as expired by the system actor by; early allows it before expires_at.
func (s *Service) expire(ctx context.Context, orgID, id, by string, early bool) (store.Handoff, error) {
	h, err := s.expireOnce(ctx, orgID, id, by, early)
	if isProblemCode(err, "already_final") {
		return h, nil
	}
	return h, err
}

// expireOnce is expire, except that a handoff already final is refused with already_final.
func (s *Service) expireOnce(ctx context.Context, orgID, id, by string, early bool) (store.Handoff, error) {
	system := Actor{OrgID: orgID, Kind: store.ActorSystem, ID: by}
	return s.finish(ctx, orgID, id, func(tx store.OrgTx, h store.Handoff) (store.Status, store.Decision, error) {
		due := !s.clock().Before(h.ExpiresAt)
		if !early && !due {
			return "", store.Decision{}, errNotDue
		}
		if early && !due && s.esc != nil {
			ended, err := s.esc.Ended(ctx, tx, h)
			if err != nil {
				return "", store.Decision{}, err
			}
			if !ended {
				return "", store.Decision{}, ErrLadderUnderWay
			}
		}
		return store.StatusExpired, store.Decision{ByKind: store.ActorSystem, ByID: by, Channel: "system"}, nil
	}, system)
}

// finish moves a pending handoff to a final state in one transaction with its callback job, then
// wakes every waiter on every replica.
//
// A person or agent acting at or after expires_at finds the handoff expired, whether or not the
// expiry job has run yet (it runs late after a crash or under load): the same transaction expires
// it — audit leaf, ladder messages, callback and wake-up included — and the caller is refused with
// "expired". The deadline is the handoff's, not the job's.
func (s *Service) finish(ctx context.Context, orgID, id string, decide func(store.OrgTx, store.Handoff) (store.Status, store.Decision, error), a Actor) (store.Handoff, error) {
	var out store.Handoff
	lapsed := false
	err := s.store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		lapsed = false // a retried transaction starts over
		by := a
		h, err := visible(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if h.Status.Final() {
			out = h
			return alreadyFinal(h)
		}
		var (
			st store.Status
			d  store.Decision
		)
		now := s.clock()
		if a.Kind != store.ActorSystem && !now.Before(h.ExpiresAt) {
			lapsed, by = true, Actor{OrgID: orgID, Kind: store.ActorSystem, ID: "expiry"}
			st, d = store.StatusExpired, store.Decision{ByKind: store.ActorSystem, ByID: "expiry", Channel: "system"}
		} else if st, d, err = decide(tx, h); err != nil {
			return err
		}
		d.DecidedAt = now
		won, err := tx.FinishHandoff(ctx, h.ID, st, d)
		if err != nil {
			return fmt.Errorf("handoff: finish: %w", err)
		}
		if !won {
			// Someone else's decision committed between our read and our write.
			if out, err = tx.HandoffByID(ctx, h.ID); err != nil {
				return err
			}
			return alreadyFinal(out)
		}
		h.Status, h.Decision = st, &d
		out = h
		if err := s.audit.Append(ctx, tx, finishEvent(h, by)); err != nil {
			return fmt.Errorf("handoff: audit: %w", err)
		}
		if s.esc != nil {
			if err := s.esc.Finished(ctx, tx, h); err != nil {
				return fmt.Errorf("handoff: escalation: %w", err)
			}
		}
		if h.CallbackURL != "" {
			if err := tx.Enqueue(ctx, CallbackArgs{OrgID: orgID, HandoffID: h.ID}, &river.InsertOpts{MaxAttempts: s.cfg.CallbackAttempts}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return out, sealedProblem(err)
	}
	// Wake the waiters first: the commit is what they wait for, and nothing else should delay them.
	// This replica's own take the committed handoff instead of reading it back.
	s.waits.committed(Topic(orgID, id), out)
	if err := s.coord.Publish(ctx, Topic(orgID, id)); err != nil {
		// Waiters re-read on their own every WaitRecheck; a lost wake-up only delays them.
		s.log.WarnContext(ctx, "publish decision failed", "handoff", id, "err", err)
	}
	s.metrics.HandoffFinished(string(out.Status), out.Decision.DecidedAt.Sub(out.CreatedAt))
	s.log.InfoContext(ctx, "handoff finished", "org", orgID, "handoff", id, "status", out.Status,
		"by_kind", out.Decision.ByKind, "by", out.Decision.ByID, "channel", out.Decision.Channel)
	if lapsed {
		return out, expiredProblem(out)
	}
	return out, nil
}

// expiredProblem refuses a decision that came at or after the handoff's deadline.
func expiredProblem(h store.Handoff) error {
	p := problem.New(problem.Conflict, "expired", "this handoff expired at %s, before this request",
		h.ExpiresAt.UTC().Format(time.RFC3339))
	p.Details = map[string]any{"status": h.Status, "expires_at": h.ExpiresAt, "decision": NewDecisionView(h)}
	return p
}

// finishEvent records how a handoff ended: who (with their role at the time), through which channel,
// with which option — never the comment, which is free text.
func finishEvent(h store.Handoff, a Actor) audit.Event {
	d := h.Decision
	e := audit.Event{At: d.DecidedAt, Actor: audit.Actor{Kind: string(d.ByKind), ID: d.ByID, Role: string(a.Role)},
		Subject: audit.Subject{Kind: "handoff", ID: h.ID}, Channel: d.Channel, Outcome: string(h.Status)}
	switch h.Status {
	case store.StatusExpired:
		e.Type = audit.HandoffExpired
	case store.StatusCancelled:
		e.Type = audit.HandoffCancelled
	default:
		e.Type, e.Details = audit.HandoffDecided, &audit.Details{Option: d.OptionID}
	}
	return e
}

// AlreadyFinal is the problem for an answer to a handoff that is final already (already_final),
// naming the decision that won when a person made it: what a late button, reply or call is told.
func AlreadyFinal(h store.Handoff) error { return alreadyFinal(h) }

func alreadyFinal(h store.Handoff) error {
	p := problem.New(problem.Conflict, "already_final", "this handoff is already %s", h.Status)
	if d := h.Decision; d != nil {
		p.Details = map[string]any{"status": h.Status, "decision": NewDecisionView(h)}
		if d.ByKind == store.ActorUser {
			p.Message = fmt.Sprintf("this handoff was already %s by %s via %s", h.Status, d.ByName, d.Channel)
		}
	}
	return p
}

// choose finds the option a person picked and the status it leads to.
func choose(h store.Handoff, optionID string) (store.Option, store.Status, error) {
	opt, ok := findOption(h.Options, optionID)
	if !ok {
		return store.Option{}, "", invalid("unknown_option", "option %q is not one of this handoff's options", optionID)
	}
	if opt.Approves {
		return opt, store.StatusApproved, nil
	}
	return opt, store.StatusDenied, nil
}

func findOption(opts []store.Option, id string) (store.Option, bool) {
	for _, o := range opts {
		if o.ID == id {
			return o, true
		}
	}
	return store.Option{}, false
}

// Topic is the coordination topic that wakes waiters of one handoff.
func Topic(orgID, id string) string { return "handoff:" + orgID + ":" + id }

// MaxWait bounds one long-poll.
const MaxWait = 60 * time.Second

// Wait returns as soon as the handoff is final, or its current state when timeout passes or drain is
// closed (the server is shutting down). It subscribes before reading, so no decision slips between.
//
// While the database is unreachable the wait holds instead of failing: it retries its read with
// backoff until the database answers or the wait ends, and then answers the last state it read, or
// the store's ErrUnavailable if it never read one.
func (s *Service) Wait(ctx context.Context, a Actor, id string, timeout time.Duration, drain <-chan struct{}) (store.Handoff, error) {
	if timeout <= 0 || timeout > MaxWait {
		return store.Handoff{}, invalid("invalid_timeout", "wait timeout is between 1s and %s", MaxWait)
	}
	topic := Topic(a.OrgID, id)
	leave := s.waits.join(topic)
	defer leave()
	events, cancel, err := s.coord.Subscribe(ctx, topic)
	if err != nil {
		return store.Handoff{}, fmt.Errorf("handoff: subscribe: %w", err)
	}
	defer cancel()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	recheck := time.NewTimer(recheckAfter(s.cfg.WaitRecheck))
	defer recheck.Stop()
	var (
		last    store.Handoff
		lastErr error // the database's unavailability, while it lasts
		backoff time.Duration
	)
	for {
		var retry <-chan time.Time
		h, err := s.Get(ctx, a, id)
		switch {
		case err == nil:
			last, lastErr, backoff = h, nil, 0
			if h.Status.Final() {
				return h, nil
			}
		case errors.Is(err, store.ErrUnavailable):
			lastErr, backoff = err, Backoff(backoff)
			retry = time.After(backoff)
		default:
			return h, err
		}
		select {
		case _, ok := <-events:
			if !ok {
				events = nil // coordination closed; fall back to rechecks
				continue
			}
			// Finished by this process: what it committed is the answer, as a re-read would find it.
			if h, done := s.waits.take(topic); done && h.Status.Final() && (a.Kind != store.ActorDevice || h.DeviceID == a.ID) {
				return h, nil
			}
		case <-recheck.C:
			recheck.Reset(recheckAfter(s.cfg.WaitRecheck))
		case <-retry:
		case <-deadline.C:
			return held(last, lastErr)
		case <-drain:
			return held(last, lastErr)
		case <-ctx.Done():
			return last, ctx.Err()
		}
	}
}

// held is what a wait answers when it ends undecided: the last state it read, or the database's
// unavailability if it never read one.
func held(last store.Handoff, lastErr error) (store.Handoff, error) {
	if last.ID == "" && lastErr != nil {
		return last, lastErr
	}
	return last, nil
}

// recheckAfter is the pause before a wait's next re-read: between half and all of every, drawn anew
// each time. Waits started together (a batch of agents, clients reconnecting after a restart) would
// otherwise re-read together for as long as they wait, a burst of reads every period that queues
// every other request behind it (a decision's p99 on PostgreSQL).
func recheckAfter(every time.Duration) time.Duration {
	return every/2 + rand.N(every-every/2)
}

// Backoff is the next pause between retries of a read the database could not answer: from 100 ms,
// doubling to at most 1 s, each drawn from its upper half so that waiters retrying together spread out.
func Backoff(prev time.Duration) time.Duration {
	next := min(max(2*prev, 100*time.Millisecond), time.Second)
	return next/2 + rand.N(next/2)
}

// Payload reads and opens a handoff's sealed payload, for the authenticated console and the
// summarizer only.
func (s *Service) Payload(ctx context.Context, h store.Handoff) (Payload, error) {
	if !h.PayloadKept {
		return Payload{}, nil
	}
	var sealed []byte
	err := s.store.ReadOrg(ctx, h.OrgID, func(tx store.OrgTx) (err error) {
		sealed, err = tx.HandoffPayload(ctx, h.ID)
		return err
	})
	if err != nil {
		return Payload{}, fmt.Errorf("handoff: read payload: %w", err)
	}
	if sealed == nil { // scrubbed since h was read
		return Payload{}, nil
	}
	b, err := s.keys.Open(sealed, payloadAAD(h.OrgID, h.ID))
	if err != nil {
		return Payload{}, fmt.Errorf("handoff: open payload: %w", err)
	}
	return Payload{Kind: h.PayloadKind, Content: string(b)}, nil
}

// sealedProblem turns an append to a log being erased into an answer the caller can act on.
func sealedProblem(err error) error {
	if errors.Is(err, audit.ErrSealed) {
		return problem.New(problem.Forbidden, "organization_erased", "this organization is being erased")
	}
	return err
}

func isProblemCode(err error, code string) bool {
	p, ok := problem.As(err)
	return ok && p.Code == code
}
