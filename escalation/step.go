package escalation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/quiet"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
)

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
		if wait, err := e.previousRungWaits(ctx, tx, h, l, a, now); err != nil || wait {
			return cmp.Or(err, ErrRungUnderWay)
		}
		marker := stepMarkerKey(a.Climb, a.Step)
		_, claimed, err := tx.ClaimSend(ctx, store.Send{HandoffID: h.ID, Key: marker,
			Climb: a.Climb, Step: a.Step, Channel: "step", Target: "-", State: store.SendStepDone, CreatedAt: now, UpdatedAt: now})
		if err != nil || !claimed {
			return err
		}
		var rows int
		if fanned, rows, err = e.fanOut(ctx, tx, h, l, a, now); err != nil {
			return err
		}
		// The marker says how many send rows the rung will have, so the next rung and the ladder's end
		// can tell a send not yet claimed from one that was never due.
		if _, err := tx.SetSendState(ctx, h.ID, marker, []store.SendState{store.SendStepDone},
			store.SendUpdate{State: store.SendStepDone, Detail: fanoutDetail(rows), At: now}); err != nil {
			return err
		}
		if c, s, ok := l.Next(a.Climb, a.Step); ok {
			return tx.Enqueue(ctx, StepArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: c, Step: s},
				&river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.Offset(c, s))})
		}
		if l.End == EndExpire {
			return tx.Enqueue(ctx, handoff.ExpireArgs{OrgID: h.OrgID, HandoffID: h.ID, Ladder: true},
				&river.InsertOpts{ScheduledAt: h.CreatedAt.Add(l.EndOffset())})
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
// without the contact a channel needs, get a send row that says so instead, so the escalation's
// timeline shows why they were not reached. It returns the sends enqueued and the send rows the rung
// will have (those plus the rows it wrote).
func (e *Engine) fanOut(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, now time.Time) (n, rows int, err error) {
	step := l.Steps[a.Step]
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return 0, 0, err
	}
	marked := 0
	enqueue := func(channel, target string) error {
		n++
		return tx.Enqueue(ctx, SendArgs{OrgID: h.OrgID, HandoffID: h.ID, Climb: a.Climb, Step: a.Step, Channel: channel, Target: target},
			&river.InsertOpts{MaxAttempts: e.cfg.SendAttempts})
	}
	mark := func(channel, target string, st store.SendState, detail string) error {
		marked++
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
					return n, 0, err
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
			kind, known := e.kind(ch)
			switch {
			case known && !kind.People:
				continue // shared destinations only, reached through their own targets
			case !known:
				e.stats.Failed.Add(1)
				if err := mark(ch, u.ID, store.SendFailed, "unknown_channel"); err != nil {
					return n, 0, err
				}
				continue
			case kind.Address(u) == "":
				e.stats.Skipped.Add(1)
				if err := mark(ch, u.ID, store.SendSkipped, "no_contact"); err != nil {
					return n, 0, err
				}
				continue
			}
			if !kind.Silent && !quietOK {
				if q, set, _ := quiet.Parse(u.QuietHours); set && q.Contains(now, quiet.Location(u.Timezone)) {
					e.stats.Quiet.Add(1)
					if err := mark(ch, u.ID, store.SendQuiet, "quiet_hours"); err != nil {
						return n, 0, err
					}
					continue
				}
			}
			if err := enqueue(ch, u.ID); err != nil {
				return n, 0, err
			}
		}
	}
	return n, n + marked, nil
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
