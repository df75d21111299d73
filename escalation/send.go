package escalation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/quiet"
	"github.com/ony-ai/ony/store"
)

// RunSend reaches one target: claim the send, check the caps, then try the kind's providers in
// order. The send row claimed first makes it idempotent: a retry after the provider accepted does
// nothing; a retry after a crash mid-call sends again with the same key, which receivers use to drop
// the duplicate. last is true on the job's final attempt. Most sends are made by their rung's own job
// (RunStepJob); a send job retries one whose providers failed, makes a redial, takes over the sends
// of a rung beyond inlineSends, or finishes a rung whose job died between its commit and its settles.
func (e *Engine) RunSend(ctx context.Context, a SendArgs, last bool) error {
	c, err := e.claim(ctx, a)
	if err != nil || c == nil {
		return err
	}
	mode := sendRetried
	if last {
		mode = sendLast
	}
	return e.send(ctx, a, c, mode)
}

// sendMode is who makes a send and what becomes of it when every provider fails.
type sendMode int

const (
	sendRetried sendMode = iota // a send job with attempts left: River retries it
	sendLast                    // a send job's last attempt: the send fails for good
	sendInline                  // the rung's own job: a send job retries it
)

// send checks the caps for a claimed send and makes it.
func (e *Engine) send(ctx context.Context, a SendArgs, c *claimed, mode sendMode) error {
	if name := e.capped(ctx, c.kind, a, c.rcpt); name != "" {
		e.stats.Capped.Add(1)
		e.d.Metrics.SendHeld(a.Channel, metrics.SendCapped)
		e.d.Logger.WarnContext(ctx, "escalation capped", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel, "cap", name)
		return e.setState(ctx, a, []store.SendState{store.SendSending}, store.SendUpdate{State: store.SendCapped, Detail: name})
	}
	return e.deliver(ctx, a, c, mode)
}

// claimed is a send this job may make.
type claimed struct {
	h       store.Handoff
	l       *Ladder
	kind    channel.Kind
	rcpt    channel.Recipient
	agent   string
	token   string
	retried bool // an earlier attempt's providers all failed
}

// claim claims the send row in one transaction and resolves its recipient, minting a decision token
// for a person on a kind that takes decisions. It returns nil when there is nothing to send: the
// handoff is final, the send was done before, or the person can no longer decide.
func (e *Engine) claim(ctx context.Context, a SendArgs) (*claimed, error) {
	var c *claimed
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		h, agent, err := tx.HandoffWithAgent(ctx, a.HandoffID)
		if err != nil {
			return err
		}
		now := e.now()
		if h.Status.Final() {
			// A retry that finds the handoff decided closes the row it left open.
			_, err := tx.SetSendState(ctx, h.ID, a.key(), []store.SendState{store.SendSending},
				store.SendUpdate{State: store.SendSkipped, Detail: "already_final", At: now})
			return err
		}
		l, err := Frozen(h)
		if err != nil {
			return err
		}
		c, err = e.claimIn(ctx, tx, h, l, a, now, claimRetry, nil, agent)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // the organization or handoff was erased
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// How claimIn treats a send row that exists already.
const (
	claimRetry = iota // a send job: take over a row still "sending" (its earlier attempt died or failed)
	claimFresh        // the rung's job: only a row it inserts now is its own
)

// claimIn claims a's send row in tx and resolves its recipient (u, if known, saves reading the
// person), minting a decision token for a kind that takes decisions. nil means nothing to send.
func (e *Engine) claimIn(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a SendArgs, now time.Time, how int, u *store.User, agent string) (*claimed, error) {
	key := a.key()
	have, fresh, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: key, Climb: a.Climb, Step: a.Step, Attempt: a.Attempt,
		Channel: a.Channel, Target: a.Target, State: store.SendSending, CreatedAt: now, UpdatedAt: now})
	if err != nil || (!fresh && (how == claimFresh || have.State != store.SendSending)) {
		return nil, err // done before: sent, capped, failed for good...
	}
	return e.ready(ctx, tx, h, l, a, now, u, agent, !fresh && have.Detail == "provider_error")
}

// ready resolves the recipient of a send whose row tx has claimed, minting a decision token for a
// kind that takes decisions; retried says an earlier attempt's providers all failed. nil means the
// person can no longer decide (the row then says so).
func (e *Engine) ready(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a SendArgs, now time.Time, u *store.User, agent string, retried bool) (*claimed, error) {
	key := a.key()
	kind, _ := e.kind(a.Channel)
	var err error
	var rcpt channel.Recipient
	if u != nil {
		rcpt = channel.Recipient{UserID: u.ID, Name: u.Name, Address: kind.Address(*u), Timezone: quiet.Location(u.Timezone)}
	} else {
		rcpt, err = e.recipient(ctx, tx, kind, a)
	}
	if errors.Is(err, errCannotDecide) {
		// Deactivated or made a viewer after the rung fanned out: nobody to ask any more.
		_, err = tx.SetSendState(ctx, h.ID, key, []store.SendState{store.SendSending},
			store.SendUpdate{State: store.SendSkipped, Detail: "cannot_decide", At: now})
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	c := &claimed{h: h, l: l, kind: kind, rcpt: rcpt, agent: agent, retried: retried}
	if kind.TakesDecisions {
		// A team destination's token is bound to the destination, not a person: whoever taps
		// decides as the member their chat account is linked to (handoff.DecideAnswer).
		person, target := rcpt.UserID, ""
		if person == "" {
			target = a.Target
		}
		if c.token, err = mintToken(ctx, tx, h, person, target, a.Channel, now); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// deliver tries the kind's providers in the step's order until one accepts, then records the outcome.
func (e *Engine) deliver(ctx context.Context, a SendArgs, c *claimed, mode sendMode) error {
	step := c.l.Steps[a.Step]
	providers := e.d.Channels.Providers(a.Channel, step.Providers[a.Channel])
	if len(providers) == 0 {
		e.stats.Failed.Add(1)
		e.d.Metrics.SendHeld(a.Channel, metrics.SendNoProvider)
		e.d.Logger.WarnContext(ctx, "no provider configured for channel", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel)
		return e.setState(ctx, a, nil, store.SendUpdate{State: store.SendFailed, Detail: "no_provider"})
	}
	n := e.notification(ctx, c.h, c.agent, c.rcpt, c.token)
	n.Key, n.Ladder, n.Climb, n.Step, n.StepName, n.Attempt = c.h.ID+"/"+a.key(), c.l.Name, a.Climb, a.Step, step.Name, a.Attempt
	var (
		d    channel.Delivery
		used channel.Channel
		err  error
	)
	for i, p := range providers {
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		d, err = p.Notify(sctx, n)
		cancel()
		e.d.Metrics.Send(a.Channel, p.Provider(), err)
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
		if mode == sendInline && e.cfg.SendAttempts > 1 {
			// Still sending, and a send job retries it as River would have retried a send job's
			// first attempt: the row and the job change together, so the retry exists once.
			retry := &river.InsertOpts{ScheduledAt: e.now().Add(retryGap), MaxAttempts: e.cfg.SendAttempts - 1}
			return e.settleRetry(ctx, a, Step{}, []store.SendState{store.SendSending},
				store.SendUpdate{State: store.SendSending, Detail: "provider_error"}, retry)
		}
		if mode == sendRetried {
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
	if a.Attempt == 0 { // a redial's due time is its own
		e.d.Metrics.RungDelivered(e.now().Sub(c.h.CreatedAt.Add(c.l.Offset(a.Climb, a.Step))))
	}
	e.d.Logger.InfoContext(ctx, "notified", "org", a.OrgID, "handoff", a.HandoffID, "channel", a.Channel, "provider", used.Provider(),
		"climb", a.Climb, "step", a.Step, "attempt", a.Attempt, "state", d.State)
	u := store.SendUpdate{State: d.State, Provider: used.Provider(), Ref: d.Ref}
	if c.retried {
		u.Detail = "retried" // replaces provider_error: it got there in the end
	}
	if !redials(c.kind, step, a, u.State) {
		u.At = e.now()
		return e.settleOnly(ctx, a, []store.SendState{store.SendSending}, u)
	}
	return e.settle(ctx, a, step, []store.SendState{store.SendSending}, u)
}

// redials reports whether a send of a that ended in st is to be dialled again (a call nobody answered).
func redials(kind channel.Kind, step Step, a SendArgs, st store.SendState) bool {
	return kind.Redials && (st == store.SendNoAnswer || st == store.SendBusy) && a.Attempt < step.Redial.Times
}

// notification is what a channel may tell recipient about h, carrying token: the one place that
// decides what leaves the process (deliver adds where in the ladder it is; Recall rebuilds it for a
// call). Agent-written text other than the redacted gist never goes in; labels and the agent's
// name pass the redactor.
func (e *Engine) notification(ctx context.Context, h store.Handoff, agent string, rcpt channel.Recipient, token string) channel.Notification {
	n := channel.Notification{OrgID: h.OrgID, HandoffID: h.ID, Action: h.Action, Risk: h.Risk, Gist: h.Gist,
		ConsoleURL: e.cfg.PublicURL + "/console/handoffs/" + h.ID, ExpiresAt: h.ExpiresAt, Recipient: rcpt, Token: token,
		Reasons: slices.Clone(h.RiskReasons)}
	// Step-up shapes how a notification offers approval, and only one with a token offers it: a kind
	// that takes no decisions (a webhook bridge) is not told, and so costs no read of the policy (a
	// transaction of its own, as many round trips as the rest of the send).
	if token != "" {
		n.StepUp = e.stepUp(ctx, h)
	}
	if agent != "" {
		n.Agent = e.d.Redact(h.OrgID, agent)
	}
	for _, o := range h.Options {
		o.Label = e.d.Redact(h.OrgID, o.Label)
		n.Options = append(n.Options, o)
	}
	return n
}

// agentName is the name an admin gave the device that asked for h; "" if it is gone.
func agentName(ctx context.Context, tx store.OrgTx, h store.Handoff) (string, error) {
	if h.DeviceID == "" {
		return "", nil
	}
	d, err := tx.DeviceByID(ctx, h.DeviceID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return d.Name, err
}

// settle records a send's outcome and, for a call nobody answered, schedules the redial — in one
// transaction, and only if this caller moved the state, so a duplicate report redials once.
func (e *Engine) settle(ctx context.Context, a SendArgs, step Step, from []store.SendState, u store.SendUpdate) error {
	return e.settleRetry(ctx, a, step, from, u, nil)
}

// retryGap is how long after its rung's job failed to reach a target a send job tries again (the
// send worker's NextRetry after a first attempt).
const retryGap = 5 * time.Second

// settleRetry is settle that, if retry is set, also enqueues a send job to make a again.
func (e *Engine) settleRetry(ctx context.Context, a SendArgs, step Step, from []store.SendState, u store.SendUpdate, retry *river.InsertOpts) error {
	u.At = e.now()
	kind, _ := e.kind(a.Channel)
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		moved, err := tx.SetSendState(ctx, a.HandoffID, a.key(), from, u)
		if err != nil || !moved {
			return err
		}
		if retry != nil {
			return tx.Enqueue(ctx, a, retry)
		}
		if !redials(kind, step, a, u.State) {
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

// reported are the outcomes a provider may report after Notify returned.
var reported = []store.SendState{store.SendDelivered, store.SendAnswered, store.SendNoAnswer, store.SendBusy, store.SendFailed}

// Outcome records how an answered call ended on its send (the keypad's outcome), found by the
// provider's reference: the send reads answered, with the outcome as its detail.
func (e *Engine) Outcome(ctx context.Context, provider, ref, outcome string) error {
	if !slices.Contains(channel.CallOutcomes, outcome) {
		return fmt.Errorf("escalation: %q is not a call outcome", outcome)
	}
	var send store.Send
	err := e.d.Store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		send, err = tx.SendByRef(ctx, provider, ref)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	a := SendArgs{OrgID: send.OrgID, HandoffID: send.HandoffID, Climb: send.Climb, Step: send.Step, Channel: send.Channel,
		Target: send.Target, Attempt: send.Attempt}
	// A keypad outcome means someone answered, whether or not the answered callback came first.
	return e.setState(ctx, a, []store.SendState{store.SendSending, store.SendSent, store.SendDelivered, store.SendAnswered},
		store.SendUpdate{State: store.SendAnswered, Provider: provider, Ref: ref, Detail: outcome})
}

// Report records a delivery outcome a provider learned after Notify returned (a call's status
// callback), finding the send by the provider's own reference for it — all a callback carries. A
// call that rang out is redialled if its rung says so. An unknown reference is store.ErrNotFound.
func (e *Engine) Report(ctx context.Context, provider, ref string, st store.SendState) error {
	if !slices.Contains(reported, st) {
		return fmt.Errorf("escalation: %q is not an outcome a provider reports", st)
	}
	var send store.Send
	err := e.d.Store.InSystem(ctx, func(tx store.SystemTx) (err error) {
		send, err = tx.SendByRef(ctx, provider, ref)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		// Two sends share the reference: a provider that reuses ids cannot be trusted with either.
		e.d.Logger.WarnContext(ctx, "status report matches more than one send; ignored", "provider", provider)
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	var h store.Handoff
	err = e.d.Store.InOrg(ctx, send.OrgID, func(tx store.OrgTx) (err error) {
		h, err = tx.HandoffByID(ctx, send.HandoffID)
		return err
	})
	if err != nil {
		return err
	}
	l, err := Frozen(h)
	if err != nil {
		return err
	}
	a := SendArgs{OrgID: send.OrgID, HandoffID: send.HandoffID, Climb: send.Climb, Step: send.Step, Channel: send.Channel,
		Target: send.Target, Attempt: send.Attempt}
	var step Step
	if a.Step < len(l.Steps) && !h.Status.Final() {
		step = l.Steps[a.Step]
	}
	return e.settle(ctx, a, step, []store.SendState{store.SendSending, store.SendSent, store.SendDelivered}, store.SendUpdate{State: st})
}

var errCannotDecide = errors.New("escalation: the person can no longer decide")

// recipient resolves a send's target to an address on its kind.
func (e *Engine) recipient(ctx context.Context, tx store.OrgTx, kind channel.Kind, a SendArgs) (channel.Recipient, error) {
	if k, value, ok := strings.Cut(a.Target, ":"); ok {
		if k != a.Channel {
			return channel.Recipient{}, fmt.Errorf("escalation: target %s on channel %s", k, a.Channel)
		}
		return channel.Recipient{Name: a.Target, Address: value, Timezone: time.UTC}, nil
	}
	u, err := tx.UserByID(ctx, a.Target)
	if err != nil {
		return channel.Recipient{}, err
	}
	if !u.Active || !u.Role.CanDecide() {
		return channel.Recipient{}, errCannotDecide
	}
	return channel.Recipient{UserID: u.ID, Name: u.Name, Address: kind.Address(u), Timezone: quiet.Location(u.Timezone)}, nil
}

// capped checks the caps of a metered kind for a send and counts it against them; it returns the
// name of the cap that stopped it ("sms_per_user_hour"), or "". Caps are checked before any is
// counted, so a refused send does not use up another window.
func (e *Engine) capped(ctx context.Context, kind channel.Kind, a SendArgs, r channel.Recipient) string {
	if kind.Meter == "" {
		return ""
	}
	lim := e.cfg.Limits[kind.Meter]
	type window struct {
		name  string
		key   string
		limit int
		per   time.Duration
	}
	ws := []window{
		{kind.Meter + "_per_user_hour", "u:" + r.UserID + ":h", lim.PerUserHour, time.Hour},
		{kind.Meter + "_per_user_day", "u:" + r.UserID + ":d", lim.PerUserDay, 24 * time.Hour},
		{kind.Meter + "_per_org_day", "o:d", lim.PerOrgDay, 24 * time.Hour},
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

func mintToken(ctx context.Context, tx store.OrgTx, h store.Handoff, userID, target, channel string, now time.Time) (string, error) {
	tok, err := auth.NewToken(auth.DecisionTokenPrefix)
	if err == nil {
		err = tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, UserID: userID, Target: target, Channel: channel,
			CreatedAt: now, ExpiresAt: h.ExpiresAt})
	}
	if err != nil {
		return "", fmt.Errorf("escalation: decision token: %w", err)
	}
	return tok.Plain, nil
}

// stepUp reports whether approving h needs a second factor, so a chat offers approval only as a link
// to the console. The decision itself enforces step-up whatever the message showed; if the policy
// cannot be read, the message errs on the side of the console.
func (e *Engine) stepUp(ctx context.Context, h store.Handoff) bool {
	if e.d.StepUp == nil {
		return false
	}
	need, err := e.d.StepUp(ctx, h.OrgID, h.Risk)
	if err != nil {
		e.d.Logger.WarnContext(ctx, "step-up policy unavailable; offering approval in the console only", "org", h.OrgID, "handoff", h.ID, "err", err)
		return true
	}
	return need
}
