package escalation

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
)

// Timeline arithmetic. Every rung's time is an offset from the handoff's creation, computed from the
// frozen ladder alone, so a rung scheduled late (a busy queue, a restart) does not push the rungs
// after it: the ladder keeps to the times it promised.

// Cycle is the time one climb of the steps takes: the sum of their waits.
func (l *Ladder) Cycle() time.Duration {
	var d time.Duration
	for _, s := range l.Steps {
		d += s.Wait
	}
	return d
}

// Offset is when rung (climb, step) runs: climb*Cycle() plus the waits of the steps before step.
// Out-of-range steps are clamped rather than panicking, since offsets are also computed for display.
func (l *Ladder) Offset(climb, step int) time.Duration {
	step = min(max(step, 0), len(l.Steps))
	d := time.Duration(max(climb, 0)) * l.Cycle()
	for _, s := range l.Steps[:step] {
		d += s.Wait
	}
	return d
}

// Next returns the rung after (climb, step): the next step, or the first step of the next climb.
// ok is false after the last step of the last climb (and for a rung outside the ladder).
func (l *Ladder) Next(climb, step int) (nextClimb, nextStep int, ok bool) {
	switch {
	case climb < 0 || step < 0 || climb > l.Repeat || step >= len(l.Steps):
		return 0, 0, false
	case step+1 < len(l.Steps):
		return climb, step + 1, true
	case climb < l.Repeat:
		return climb + 1, 0, true
	}
	return 0, 0, false
}

// EndOffset is when the ladder is exhausted: (Repeat+1)*Cycle(). With End expire, the handoff
// expires then.
func (l *Ladder) EndOffset() time.Duration {
	return time.Duration(l.Repeat+1) * l.Cycle()
}

// EventKind is what happens at a point of a Timeline.
type EventKind string

const (
	EventNotify EventKind = "notify" // a rung reaches its targets on its channels
	EventRedial EventKind = "redial" // a call is placed again, assuming nobody answered
	EventEnd    EventKind = "end"    // the ladder ran out and, with end: expire, expires the handoff
	EventExpire EventKind = "expire" // the handoff's own timeout
)

// Event is one thing a ladder will do. Climb and Step are the rung; for end and expire events, the
// last rung reached by then. Attempt counts redials from 1 (0 for other events).
type Event struct {
	At       time.Duration `json:"at"`
	Kind     EventKind     `json:"kind"`
	Climb    int           `json:"climb"`
	Step     int           `json:"step"`
	Attempt  int           `json:"attempt,omitempty"`
	Channels []string      `json:"channels,omitempty"`
	Targets  []Target      `json:"targets,omitempty"`
}

// Timeline lists what l will do for a handoff with the given timeout, assuming nobody decides, in
// time order. It stops at the timeout with an expire event, unless the ladder (end: expire) ran
// out before, which ends it with an end event. Redials (of the step's kinds that redial: calls) are
// listed at multiples of their gap, as if nobody answered. A timeout of 0 or less means none: the
// whole ladder is listed.
func Timeline(l *Ladder, timeout time.Duration, kinds *channel.Kinds) []Event {
	endAt := l.EndOffset()
	ends := l.End == EndExpire && (timeout <= 0 || endAt < timeout)
	// Something due at the very moment of the end still happens (the end is scheduled after the last
	// rung); something due at the timeout does not (the handoff is expired by then).
	within := func(at time.Duration) bool {
		if ends {
			return at <= endAt
		}
		return timeout <= 0 || at < timeout
	}
	var events []Event
	for c := 0; c <= l.Repeat; c++ {
		for s, st := range l.Steps {
			at := l.Offset(c, s)
			if !within(at) {
				break
			}
			events = append(events, Event{At: at, Kind: EventNotify, Climb: c, Step: s,
				Channels: slices.Clone(st.Channels), Targets: slices.Clone(st.Targets)})
			var redials []string
			for _, c := range st.Channels {
				if k, ok := kinds.Kind(c); ok && k.Redials {
					redials = append(redials, c)
				}
			}
			if len(redials) == 0 || st.Redial.Times <= 0 || st.Redial.Gap <= 0 {
				continue
			}
			var people []Target
			for _, t := range st.Targets {
				if !t.Team() {
					people = append(people, t)
				}
			}
			for a := 1; a <= st.Redial.Times; a++ {
				ra := at + time.Duration(a)*st.Redial.Gap
				if !within(ra) {
					break
				}
				events = append(events, Event{At: ra, Kind: EventRedial, Climb: c, Step: s, Attempt: a,
					Channels: redials, Targets: people})
			}
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].At < events[j].At })

	last := Event{}
	for _, e := range events {
		if e.Kind == EventNotify {
			last = e
		}
	}
	switch {
	case ends:
		events = append(events, Event{At: endAt, Kind: EventEnd, Climb: l.Repeat, Step: max(len(l.Steps)-1, 0)})
	case timeout > 0:
		events = append(events, Event{At: timeout, Kind: EventExpire, Climb: last.Climb, Step: last.Step})
	}
	return events
}

// FormatTimeline writes events (from Timeline) for people: the ladder, what it matches and how it
// ends, then one line per event.
func FormatTimeline(w io.Writer, l *Ladder, events []Event) {
	fmt.Fprintf(w, "ladder %s (%s", l.Name, l.Origin)
	if l.Version > 0 {
		fmt.Fprintf(w, ", version %d", l.Version)
	}
	fmt.Fprintf(w, ", order %d)\n", l.Order)
	fmt.Fprintf(w, "  %-8s %s\n", "match", describeMatch(l))
	times := "once, " + FormatDuration(l.Cycle())
	switch {
	case l.Repeat == 0 && l.Cycle() == 0:
		times = "once"
	case l.Repeat > 0:
		times = fmt.Sprintf("%d times, %s each", l.Repeat+1, FormatDuration(l.Cycle()))
	}
	then := "then the handoff expires"
	if l.End == EndWait {
		then = "then the handoff waits in the console until its own timeout"
	}
	fmt.Fprintf(w, "  %-8s %s, %s\n", "climbs", times, then)
	for _, e := range events {
		var what string
		switch e.Kind {
		case EventNotify:
			what = fmt.Sprintf("%s → %s", strings.Join(e.Channels, ", "), joinTargets(e.Targets))
			if notes := rungNotes(l, e); notes != "" {
				what += "  (" + notes + ")"
			}
		case EventRedial:
			times := 0
			if e.Step >= 0 && e.Step < len(l.Steps) {
				times = l.Steps[e.Step].Redial.Times
			}
			what = fmt.Sprintf("%s → %s (attempt %d of %d)", strings.Join(e.Channels, ", "), joinTargets(e.Targets), e.Attempt, times)
		case EventEnd:
			what = "the ladder ran out; nobody decided, so the handoff expires"
		case EventExpire:
			what = "nobody decided"
		default:
			what = string(e.Kind)
		}
		fmt.Fprintf(w, "  %-8s %-7s %s\n", "+"+FormatDuration(e.At), e.Kind, what)
	}
}

// rungNotes names a notify event's step and climb, and says when it reaches people in their quiet
// hours.
func rungNotes(l *Ladder, e Event) string {
	if e.Step < 0 || e.Step >= len(l.Steps) {
		return ""
	}
	st := l.Steps[e.Step]
	notes := []string{fmt.Sprintf("step %d", e.Step+1)}
	if st.Name != "" {
		notes[0] += " " + st.Name
	}
	if l.Repeat > 0 {
		notes = append(notes, fmt.Sprintf("climb %d of %d", e.Climb+1, l.Repeat+1))
	}
	switch {
	case st.Quiet == QuietIgnore:
		notes = append(notes, "ignores quiet hours")
	case st.OverrideQuietAt != "":
		notes = append(notes, "ignores quiet hours at risk ≥ "+st.OverrideQuietAt)
	}
	return strings.Join(notes, ", ")
}

// describeMatch says in one line which handoffs l is for.
func describeMatch(l *Ladder) string {
	if l.Default {
		return "default: any handoff no other ladder matches"
	}
	m := l.Match
	var parts []string
	if len(m.Risk) > 0 {
		parts = append(parts, "risk "+strings.Join(m.Risk, " or "))
	}
	if len(m.Actions) > 0 {
		parts = append(parts, "action "+strings.Join(m.Actions, ", "))
	}
	if len(m.Labels) > 0 {
		var ls []string
		for _, k := range sortedKeys(m.Labels) {
			ls = append(ls, k+"="+m.Labels[k])
		}
		parts = append(parts, "labels "+strings.Join(ls, ", "))
	}
	if len(parts) == 0 {
		return "every handoff"
	}
	return strings.Join(parts, "; ")
}

func joinTargets(ts []Target) string {
	if len(ts) == 0 {
		return "nobody"
	}
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

// FormatDuration is time.Duration's String without the zero units it appends: 5m, 1h, 1h30m — the
// way ladders are written.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
