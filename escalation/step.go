package escalation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/quiet"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

// RunStep runs one rung outside the job runner (tests, tools): as RunStepJob with no job id, so a
// second run finds the rung done and adds nothing.
func (e *Engine) RunStep(ctx context.Context, a StepArgs) error { return e.RunStepJob(ctx, a, 0) }

// inlineSends bounds the sends a rung makes from its own job; the rest go to send jobs as before, so
// the step job's timeout covers one round of provider calls, not a queue of them.
const inlineSends = 16

// outgoing is a send the rung claimed in its own transaction and makes itself after the commit.
type outgoing struct {
	a       SendArgs
	c       *claimed
	claimed time.Time // when, by the real clock: the send's lateness counts from here, as a send job's from its insert
}

// RunStepJob runs rung a as River job jobID: one transaction, guarded by the rung's step marker,
// claims the rung's send rows (minting their decision tokens) and schedules the next rung or the end;
// after the commit the job calls the providers itself, concurrently, and settles each send. A rung
// that runs twice (a retry, a duplicate job, a second replica) finds the marker and adds nothing.
//
// Exactly once across a crash: a claimed row reads "sending" until its send settles, and the marker
// names the job that claimed it. If the process dies between the commit and the settles, River rescues
// this same job after its Timeout (stepWorker) and retries it, or retries it after an error (a settle
// that failed); that run finds the marker with its own job id and makes each send whose row still
// reads "sending" again, under the same key, as a retried send job always has (receivers drop the
// duplicate by key). A provider failure is settled as provider_error with a send job to retry it, in
// one transaction. So no rescue job is written per send: the step job is its own rescue, and the
// common path costs one job and two transactions per one-target rung instead of two jobs and three.
func (e *Engine) RunStepJob(ctx context.Context, a StepArgs, jobID int64) error {
	var (
		fanned int
		out    []outgoing
	)
	// Plan, marker, rows: the marker is written once, with its count, and a duplicate run stops at it.
	// The first try claims the marker and the rung's rows in one statement (claimRung); if the marker
	// was there, that try is rolled back and the careful path, one claim at a time, finds out whose
	// rung it is.
	run := func(careful bool) error {
		return e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
			fanned, out = 0, out[:0]
			h, agent, err := tx.HandoffWithAgent(ctx, a.HandoffID)
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
			if err := e.previousRungWaits(ctx, tx, h, l, a, now); err != nil {
				return err
			}
			users, err := rungUsers(ctx, tx, l, a)
			if err != nil {
				return err
			}
			plan := e.plan(h, l, a, users, now)
			// The marker says how many send rows the rung will have, so the next rung and the ladder's end
			// can tell a send not yet claimed from one that was never due; and which job claimed them.
			marker := store.Send{HandoffID: h.ID, Key: stepMarkerKey(a.Climb, a.Step), Climb: a.Climb, Step: a.Step,
				Channel: "step", Target: "-", State: store.SendStepDone, Detail: fanoutDetail(len(plan), jobID), CreatedAt: now, UpdatedAt: now}
			if !careful {
				if fanned, out, err = e.claimRung(ctx, tx, h, l, a, now, plan, marker, agent); err != nil {
					return err
				}
			} else {
				have, claimed, err := tx.ClaimSend(ctx, marker)
				if err != nil {
					return err
				}
				if !claimed {
					if jobID != 0 && markerJob(have.Detail) == jobID {
						out, err = e.resumeRung(ctx, tx, h, l, a, have.CreatedAt, now)
						return err
					}
					return nil
				}
				if fanned, out, err = e.fanOut(ctx, tx, h, l, a, now, plan); err != nil {
					return err
				}
			}
			return scheduleNext(ctx, tx, h, l, a)
		})
	}
	err := run(false)
	if errors.Is(err, errRungClaimed) {
		err = run(true)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil // the organization or handoff was erased
	}
	if err != nil {
		return err
	}
	if fanned > 0 {
		e.d.Logger.InfoContext(ctx, "escalation step", "org", a.OrgID, "handoff", a.HandoffID, "climb", a.Climb, "step", a.Step, "sends", fanned)
	}
	if e.crashAfterCommit != nil && e.crashAfterCommit(a) {
		return errSimulatedCrash
	}
	return e.sendAll(ctx, out)
}

// rungUsers lists the people rung a may reach. A rung that reaches only shared destinations
// (webhook:ops, a Slack channel) needs none, and skips the read.
func rungUsers(ctx context.Context, tx store.OrgTx, l *Ladder, a StepArgs) ([]store.User, error) {
	if !slices.ContainsFunc(l.Steps[a.Step].Targets, func(t Target) bool { return !t.Team() }) {
		return nil, nil
	}
	return tx.ListUsers(ctx)
}

// scheduleNext enqueues what follows rung a: the next rung, or the ladder's end.
func scheduleNext(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs) error {
	if c, s, ok := l.Next(a.Climb, a.Step); ok {
		return tx.Enqueue(ctx, StepArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: c, Step: s},
			&river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.Offset(c, s))})
	}
	if l.End == EndExpire {
		return tx.Enqueue(ctx, handoff.ExpireArgs{OrgID: h.OrgID, HandoffID: h.ID, Ladder: true},
			&river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.EndOffset())})
	}
	return nil
}

// sendAll makes the rung's claimed sends concurrently; an error (a settle that could not be written)
// fails the job, whose retry makes the unsettled sends again (resumeRung).
func (e *Engine) sendAll(ctx context.Context, out []outgoing) error {
	send := func(o outgoing) error {
		e.observe(SendArgs{}.Kind(), o.claimed)
		return e.send(ctx, o.a, o.c, sendInline)
	}
	if len(out) == 1 {
		return send(out[0])
	}
	errs := make([]error, len(out))
	var wg sync.WaitGroup
	for i, o := range out {
		wg.Go(func() { errs[i] = send(o) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// resumeRung is a retry of the job that claimed rung a's sends (after a crash or an error between the
// commit and the settles): it claims again each row that job claimed (written with the marker, at
// ran) still "sending", for the job to make once more. Rows a send job owns are left to it: a wide
// rung's overflow (claimed later), and a send retrying after a provider error.
func (e *Engine) resumeRung(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, ran, now time.Time) ([]outgoing, error) {
	sends, err := tx.ListSends(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	var out []outgoing
	for _, s := range sends {
		if s.Climb != a.Climb || s.Step != a.Step || s.Attempt != 0 || s.State != store.SendSending || s.Detail == "provider_error" ||
			!s.CreatedAt.Equal(ran) {
			continue
		}
		e.d.Logger.WarnContext(ctx, "escalation send left unsettled by an earlier run of its rung; sending again", "org", h.OrgID, "handoff", h.ID,
			"climb", a.Climb, "step", a.Step, "channel", s.Channel)
		agent, err := agentName(ctx, tx, h)
		if err != nil {
			return nil, err
		}
		args := SendArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: s.Climb, Step: s.Step, Channel: s.Channel, Target: s.Target}
		c, err := e.claimIn(ctx, tx, h, l, args, now, claimRetry, nil, agent)
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, outgoing{a: args, c: c, claimed: time.Now()})
		}
	}
	return out, nil
}

// planned is one row of a rung's fan-out: a send to make (state "") or a row that says why a person
// is not reached on a channel.
type planned struct {
	channel, target string
	user            *store.User // the person, for a send to one
	state           store.SendState
	detail          string
	provider        string // for a row written delivered (an Inbox kind's)
}

// plan lists rung a's fan-out, one row per (channel, target), without writing anything: people in
// quiet hours, and people without the contact a channel needs, get a row that says so instead of a
// send, so the escalation's timeline shows why they were not reached. A row on an Inbox kind (the
// console) is the delivery itself, so it is planned delivered.
func (e *Engine) plan(h store.Handoff, l *Ladder, a StepArgs, users []store.User, now time.Time) []planned {
	step := l.Steps[a.Step]
	var out []planned
	var people []store.User
	for _, t := range step.Targets {
		if t.Team() {
			if slices.Contains(step.Channels, string(t.Kind)) {
				out = append(out, planned{channel: string(t.Kind), target: t.String()})
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
	for i, u := range people {
		for _, ch := range step.Channels {
			kind, known := e.kind(ch)
			p := planned{channel: ch, target: u.ID, user: &people[i]}
			switch {
			case known && !kind.People:
				continue // shared destinations only, reached through their own targets
			case !known:
				p.state, p.detail = store.SendFailed, "unknown_channel"
			case kind.Address(u) == "":
				p.state, p.detail = store.SendSkipped, "no_contact"
			case !kind.Silent && !quietOK:
				if q, set, _ := quiet.Parse(u.QuietHours); set && q.Contains(now, quiet.Location(u.Timezone)) {
					p.state, p.detail = store.SendQuiet, "quiet_hours"
				}
			}
			if kind.Inbox && p.state == "" {
				if ps := e.d.Channels.Providers(ch, step.Providers[ch]); len(ps) > 0 {
					p.state, p.provider = store.SendDelivered, ps[0].Provider()
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// errRungClaimed rolls back claimRung's transaction for the careful path: the rung's marker exists,
// so the rows it inserted with it may not be its to insert (or its plan repeats a row).
var errRungClaimed = errors.New("escalation: the rung was claimed before")

// claimRung is fanOut for a rung whose marker is probably new: one statement inserts the marker and
// every planned row (the sends up to inlineSends, claimed for the step job to make, and the rows that
// say why someone is not reached), where fanOut takes a statement each. If the marker was there it
// returns errRungClaimed, and the caller rolls back and takes the careful path. Otherwise every row
// was new too: a rung's rows are written in its marker's transaction, or by send jobs that
// transaction enqueued; one that was there anyway is not claimed, as in fanOut.
func (e *Engine) claimRung(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, now time.Time, plan []planned, marker store.Send, agent string) (n int, out []outgoing, err error) {
	type pending struct {
		row  int
		args SendArgs
		user *store.User
	}
	rows := []store.Send{marker}
	var sends []pending
	var overflow []SendArgs
	keys := make(map[string]bool, len(plan))
	for _, p := range plan {
		args := SendArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: a.Climb, Step: a.Step, Channel: p.channel, Target: p.target}
		if keys[args.key()] {
			// Ladders list each channel and target once; should a plan still repeat a row, the
			// careful path claims it once, as it always has.
			return 0, nil, errRungClaimed
		}
		keys[args.key()] = true
		row := store.Send{HandoffID: h.ID, Key: args.key(), Climb: a.Climb, Step: a.Step, Channel: p.channel, Target: p.target,
			State: p.state, Detail: p.detail, Provider: p.provider, CreatedAt: now, UpdatedAt: now}
		if p.state == store.SendDelivered {
			n++ // an inbox row: a send, made by writing it
		}
		if p.state != "" {
			rows = append(rows, row)
			continue
		}
		n++
		if len(sends) >= inlineSends {
			overflow = append(overflow, args)
			continue
		}
		row.State = store.SendSending
		sends = append(sends, pending{row: len(rows), args: args, user: p.user})
		rows = append(rows, row)
	}
	got, err := tx.ClaimSends(ctx, rows)
	if err != nil {
		return n, nil, err
	}
	if !got[0] {
		return 0, nil, errRungClaimed
	}
	for _, p := range plan {
		if p.state != "" {
			e.countPlanned(h, l, a, now, p)
		}
	}
	for _, args := range overflow {
		if err := tx.Enqueue(ctx, args, &river.InsertOpts{MaxAttempts: e.cfg.SendAttempts}); err != nil {
			return n, nil, err
		}
	}
	for _, p := range sends {
		if !got[p.row] {
			continue
		}
		c, err := e.ready(ctx, tx, h, l, p.args, now, p.user, agent, false)
		if err != nil {
			return n, nil, err
		}
		if c != nil {
			out = append(out, outgoing{a: p.args, c: c, claimed: time.Now()})
		}
	}
	return n, out, nil
}

// countPlanned counts a row the plan wrote final: a delivery (an Inbox kind's), or a send that will
// not be made, by why.
func (e *Engine) countPlanned(h store.Handoff, l *Ladder, a StepArgs, now time.Time, p planned) {
	switch p.state {
	case store.SendDelivered:
		e.stats.Sent.Add(1)
		e.d.Metrics.Send(p.channel, p.provider, nil)
		e.d.Metrics.RungDelivered(now.Sub(h.CreatedAt.Add(l.Offset(a.Climb, a.Step))))
	case store.SendFailed:
		e.stats.Failed.Add(1)
	case store.SendQuiet:
		e.stats.Quiet.Add(1)
	default:
		e.stats.Skipped.Add(1)
	}
}

// fanOut writes rung a's planned rows: it claims each send, up to inlineSends of them, for the step
// job to make itself, and enqueues a send job for each beyond. It returns the sends due and those
// claimed for the job to make.
func (e *Engine) fanOut(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, now time.Time, plan []planned) (n int, out []outgoing, err error) {
	var agent *string
	for _, p := range plan {
		args := SendArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: a.Climb, Step: a.Step, Channel: p.channel, Target: p.target}
		if p.state == store.SendDelivered {
			n++ // an inbox row: a send, made by writing it
		}
		if p.state != "" {
			e.countPlanned(h, l, a, now, p)
			if _, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: args.key(), Climb: a.Climb, Step: a.Step, Channel: p.channel,
				Target: p.target, State: p.state, Detail: p.detail, Provider: p.provider, CreatedAt: now, UpdatedAt: now}); err != nil {
				return n, nil, err
			}
			continue
		}
		n++
		if len(out) >= inlineSends {
			if err := tx.Enqueue(ctx, args, &river.InsertOpts{MaxAttempts: e.cfg.SendAttempts}); err != nil {
				return n, nil, err
			}
			continue
		}
		if agent == nil {
			name, err := agentName(ctx, tx, h)
			if err != nil {
				return n, nil, err
			}
			agent = &name
		}
		c, err := e.claimIn(ctx, tx, h, l, args, now, claimFresh, p.user, *agent)
		if err != nil {
			return n, nil, err
		}
		if c != nil {
			out = append(out, outgoing{a: args, c: c, claimed: time.Now()})
		}
	}
	return n, out, nil
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
