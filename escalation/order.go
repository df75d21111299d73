package escalation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/store"
)

// Rungs run in order, and a ladder's end never overtakes its last rung. After a crash or an outage
// several of a handoff's jobs can be overdue at once, and the queue runs them oldest-scheduled first:
// the next rung (scheduled at its place on the ladder) before the sends of the rung before it
// (scheduled when that rung ran), the ladder's end before the last rung's sends, and a send claimed by
// a killed process only comes back when the job runner rescues it. So a rung waits until every
// notification of the rung before it has been made (sent, failed, capped, or retrying after a provider
// error), and the end waits until every notification of the ladder has settled. Both wait by snoozing
// their job, and for at most EndGrace after the rung they wait for ran.

// EndGrace bounds how long a rung or the ladder's end waits for the notifications of the rung before
// it, counted from when that rung ran: a send that was lost rather than late (its job gone) must not
// hold a handoff's escalation for good. The handoff's own expires_at bounds it too.
const EndGrace = 5 * time.Minute

// ErrRungUnderWay is returned by RunStep when the rung before is still being notified; the job is
// retried shortly (snoozed).
var ErrRungUnderWay = errors.New("escalation: the previous rung's notifications are still under way")

// fanoutDetail is the step marker's detail: how many send rows the rung's fan-out will have (every
// row it wrote, and those its overflow send jobs write when they claim their send), and the job that
// ran it if any ("sends=2 job=41"), so that job's retry knows the claimed rows are its own.
func fanoutDetail(rows int, jobID int64) string {
	d := "sends=" + strconv.Itoa(rows)
	if jobID != 0 {
		d += " job=" + strconv.FormatInt(jobID, 10)
	}
	return d
}

// markerJob is the job id a marker's detail names; 0 if none.
func markerJob(detail string) int64 {
	_, j, ok := strings.Cut(detail, " job=")
	if !ok {
		return 0
	}
	id, _ := strconv.ParseInt(j, 10, 64)
	return id
}

// rungWait is ErrRungUnderWay with how long the job should sleep before it looks again.
type rungWait struct{ snooze time.Duration }

func (rungWait) Error() string        { return ErrRungUnderWay.Error() }
func (rungWait) Is(target error) bool { return target == ErrRungUnderWay }

// Snooze lengths for a rung waiting for the one before. A rung's job makes its sends right after its
// commit, which also makes an overdue next rung runnable: that rung, fetched by another worker while
// the sends are in flight, would wait a whole snoozeFor for a post of some milliseconds. So while the
// sends it waits for were claimed less than freshClaim ago it looks again after snoozeFresh.
const (
	snoozeFor   = time.Second
	snoozeFresh = 100 * time.Millisecond
	freshClaim  = 2 * time.Second
)

// snoozeOf is how long a job that returned err (ErrRungUnderWay) sleeps.
func snoozeOf(err error) time.Duration {
	var w rungWait
	if errors.As(err, &w) {
		return w.snooze
	}
	return snoozeFor
}

// rungProgress is what the rows of one rung say about its notifications.
type rungProgress struct {
	ran       bool      // its step marker exists
	ranAt     time.Time // when it fanned out
	unclaimed int       // fanned out, but no send job has claimed the row yet
	inFlight  int       // claimed and not finished: being sent, or by a process that died
	lastClaim time.Time // the newest of those in flight was claimed (or last moved) then
}

// waiting is whether notifications of the rung are still to be made. A send retrying after every
// provider failed is not waited for: it was made, and the next rung should not wait on a broken
// provider.
func (p rungProgress) waiting() bool { return !p.ran || p.unclaimed > 0 || p.inFlight > 0 }

func progressOf(sends []store.Send, climb, step int) rungProgress {
	var p rungProgress
	expected, rows := -1, 0
	for _, s := range sends {
		if s.Climb != climb || s.Step != step {
			continue
		}
		if s.State == store.SendStepDone {
			p.ran, p.ranAt = true, s.CreatedAt
			if n, ok := strings.CutPrefix(s.Detail, "sends="); ok {
				n, _, _ = strings.Cut(n, " ")
				if v, err := strconv.Atoi(n); err == nil {
					expected = v
				}
			}
			continue
		}
		if s.Attempt == 0 {
			rows++
		}
		if s.State == store.SendSending && s.Detail != "provider_error" {
			p.inFlight++
			if s.UpdatedAt.After(p.lastClaim) {
				p.lastClaim = s.UpdatedAt
			}
		}
	}
	// A marker written before the count was kept (expected -1) says nothing about unclaimed sends.
	p.unclaimed = max(expected-rows, 0)
	return p
}

// prev is the rung before (climb, step); ok is false for the first.
func (l *Ladder) prev(climb, step int) (int, int, bool) {
	switch {
	case step > 0:
		return climb, step - 1, true
	case climb > 0:
		return climb - 1, len(l.Steps) - 1, true
	}
	return 0, 0, false
}

// previousRungWaits returns a rungWait if rung a must wait for the notifications of the rung before it.
func (e *Engine) previousRungWaits(ctx context.Context, tx store.OrgTx, h store.Handoff, l *Ladder, a StepArgs, now time.Time) error {
	pc, ps, ok := l.prev(a.Climb, a.Step)
	if !ok || !now.Before(h.ExpiresAt) {
		return nil
	}
	sends, err := tx.ListSends(ctx, h.ID)
	if err != nil {
		return err
	}
	p := progressOf(sends, pc, ps)
	if !p.waiting() || !within(p, h.CreatedAt.Add(l.Offset(pc, ps)), now) {
		return nil
	}
	if p.ran && p.unclaimed == 0 && now.Sub(p.lastClaim) < freshClaim {
		return rungWait{snoozeFresh}
	}
	return rungWait{snoozeFor}
}

// within reports whether it is still worth waiting for rung p: less than EndGrace since it ran (or,
// if it has not, since it was due).
func within(p rungProgress, due, now time.Time) bool {
	from := due
	if p.ran {
		from = p.ranAt
	}
	return now.Before(from.Add(EndGrace))
}

// Ended implements handoff.Escalator: whether h's ladder may end now. It may once its last rung has
// run and none of the ladder's notifications is still to be made or retried, or EndGrace after the
// last rung ran, whichever comes first (the service never waits past expires_at).
func (e *Engine) Ended(ctx context.Context, tx store.OrgTx, h store.Handoff) (bool, error) {
	if len(h.Ladder) == 0 {
		return true, nil
	}
	l, err := Frozen(h)
	if err != nil || len(l.Steps) == 0 {
		return true, nil // nothing to wait for that can be read
	}
	sends, err := tx.ListSends(ctx, h.ID)
	if err != nil {
		return false, err
	}
	lc, ls := l.Repeat, len(l.Steps)-1
	last := progressOf(sends, lc, ls)
	open := 0
	for _, s := range sends {
		if s.State == store.SendSending {
			open++
		}
	}
	if !last.waiting() && open == 0 {
		return true, nil
	}
	if !within(last, h.CreatedAt.Add(l.Offset(lc, ls)), e.now()) {
		e.d.Logger.WarnContext(ctx, "ladder ends with notifications still under way", "org", h.OrgID, "handoff", h.ID,
			"last_rung_ran", last.ran, "unclaimed", last.unclaimed, "sending", open)
		return true, nil
	}
	return false, nil
}

// stepMarkerKey is the key of rung (climb, step)'s marker row.
func stepMarkerKey(climb, step int) string { return fmt.Sprintf("step.%d.%d", climb, step) }
