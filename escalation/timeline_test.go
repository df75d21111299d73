package escalation

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

const m = time.Minute

// threeSteps is critical-production's shape: chat 2m, text 3m, call 5m with two redials a minute apart.
func threeSteps(repeat int, end End) *Ladder {
	return &Ladder{Name: "three", Origin: "test", Order: 10, Repeat: repeat, End: end, Steps: []Step{
		{Name: "chat", Channels: []string{"slack"}, Targets: []Target{{TargetGroup, "oncall"}, {TargetKind("slack"), "#ops"}}, Wait: 2 * m},
		{Channels: []string{"sms"}, Targets: []Target{{TargetGroup, "oncall"}}, Wait: 3 * m},
		{Name: "call", Channels: []string{"call"}, Targets: []Target{{TargetUser, "ana@example.com"}}, Wait: 5 * m,
			Quiet: QuietIgnore, Redial: Redial{Times: 2, Gap: m}},
	}}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	l := threeSteps(1, EndExpire)
	if got := l.Cycle(); got != 10*m {
		t.Errorf("Cycle = %s", got)
	}
	if got := l.EndOffset(); got != 20*m {
		t.Errorf("EndOffset = %s", got)
	}
	for _, tt := range []struct {
		c, s int
		want time.Duration
	}{{0, 0, 0}, {0, 1, 2 * m}, {0, 2, 5 * m}, {1, 0, 10 * m}, {1, 2, 15 * m}, {0, 3, 10 * m}, {0, 99, 10 * m}, {-1, -1, 0}} {
		if got := l.Offset(tt.c, tt.s); got != tt.want {
			t.Errorf("Offset(%d, %d) = %s, want %s", tt.c, tt.s, got, tt.want)
		}
	}

	// Walking Next from the first rung visits every rung once, in time order.
	var rungs []string
	c, s, ok := 0, 0, true
	prev := time.Duration(-1)
	for ok {
		rungs = append(rungs, fmt.Sprintf("%d.%d", c, s))
		if at := l.Offset(c, s); at < prev {
			t.Errorf("Offset(%d, %d) = %s goes back from %s", c, s, at, prev)
		} else {
			prev = at
		}
		c, s, ok = l.Next(c, s)
	}
	if want := []string{"0.0", "0.1", "0.2", "1.0", "1.1", "1.2"}; !reflect.DeepEqual(rungs, want) {
		t.Errorf("rungs %v, want %v", rungs, want)
	}
	for _, bad := range [][2]int{{2, 0}, {0, 3}, {-1, 0}, {0, -1}} {
		if _, _, ok := l.Next(bad[0], bad[1]); ok {
			t.Errorf("Next(%d, %d) ok", bad[0], bad[1])
		}
	}
	b := Builtin()
	if b.Cycle() != 0 || b.EndOffset() != 0 || b.Offset(0, 0) != 0 {
		t.Error("Builtin arithmetic")
	}
	if _, _, ok := b.Next(0, 0); ok {
		t.Error("Builtin has a second rung")
	}
}

// brief renders events as "at kind climb.step[#attempt]".
func brief(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s %s %d.%d", FormatDuration(e.At), e.Kind, e.Climb, e.Step)
		if e.Attempt > 0 {
			out[i] += fmt.Sprintf("#%d", e.Attempt)
		}
	}
	return out
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	full := []string{
		"0s notify 0.0", "2m notify 0.1", "5m notify 0.2", "6m redial 0.2#1", "7m redial 0.2#2",
		"10m notify 1.0", "12m notify 1.1", "15m notify 1.2", "16m redial 1.2#1", "17m redial 1.2#2",
	}
	for _, tt := range []struct {
		name    string
		l       *Ladder
		timeout time.Duration
		want    []string
	}{
		{"ends before the timeout", threeSteps(1, EndExpire), time.Hour, append(full, "20m end 1.2")},
		{"end wait runs to the timeout", threeSteps(1, EndWait), time.Hour, append(full, "1h expire 1.2")},
		{"cut at the timeout", threeSteps(1, EndExpire), 12 * m, append(full[:5:5], "10m notify 1.0", "12m expire 1.0")},
		{"a rung at the timeout does not run", threeSteps(1, EndExpire), 10 * m, append(full[:5:5], "10m expire 0.2")},
		{"end at the timeout is the timeout", threeSteps(1, EndExpire), 20 * m, append(full, "20m expire 1.2")},
		{"redials cut", threeSteps(0, EndExpire), 6*m + time.Second, []string{"0s notify 0.0", "2m notify 0.1", "5m notify 0.2", "6m redial 0.2#1", "6m1s expire 0.2"}},
		{"no timeout", threeSteps(0, EndExpire), 0, append(full[:5:5], "10m end 0.2")},
		{"no timeout, end wait", threeSteps(0, EndWait), 0, full[:5]},
		{"builtin", Builtin(), time.Hour, []string{"0s notify 0.0", "1h expire 0.0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs := Timeline(tt.l, tt.timeout, testKinds)
			if got := brief(evs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].At < evs[i-1].At {
					t.Errorf("event %d goes back in time", i)
				}
			}
		})
	}

	evs := Timeline(threeSteps(0, EndExpire), time.Hour, testKinds)
	if e := evs[0]; !reflect.DeepEqual(e.Channels, []string{"slack"}) || len(e.Targets) != 2 {
		t.Errorf("notify event %+v", e)
	}
	// Redials call people only, never a team target.
	l := threeSteps(0, EndExpire)
	l.Steps[2].Channels = []string{"call", "slack"}
	l.Steps[2].Targets = append(l.Steps[2].Targets, Target{TargetKind("slack"), "#ops"})
	for _, e := range Timeline(l, time.Hour, testKinds) {
		if e.Kind == EventRedial && (!reflect.DeepEqual(e.Channels, []string{"call"}) || !reflect.DeepEqual(e.Targets, []Target{{TargetUser, "ana@example.com"}})) {
			t.Errorf("redial event %+v", e)
		}
	}
}

func TestTimelineEventsDoNotAlias(t *testing.T) {
	t.Parallel()
	l := threeSteps(0, EndExpire)
	evs := Timeline(l, time.Hour, testKinds)
	evs[0].Channels[0] = "changed"
	evs[0].Targets[0].Value = "changed"
	if l.Steps[0].Channels[0] != "slack" || l.Steps[0].Targets[0].Value != "oncall" {
		t.Error("Timeline's events share the ladder's slices")
	}
}

func TestFormatTimeline(t *testing.T) {
	t.Parallel()
	l := threeSteps(1, EndExpire)
	l.Match = Match{Risk: []string{"high", "critical"}, Labels: map[string]string{"env": "prod*"}}
	l.Steps[1].OverrideQuietAt = "critical"
	var b strings.Builder
	FormatTimeline(&b, l, Timeline(l, 18*m, testKinds))
	want := `ladder three (test, order 10)
  match    risk high or critical; labels env=prod*
  climbs   2 times, 10m each, then the handoff expires
  +0s      notify  slack → group:oncall, slack:#ops  (step 1 chat, climb 1 of 2)
  +2m      notify  sms → group:oncall  (step 2, climb 1 of 2, ignores quiet hours at risk ≥ critical)
  +5m      notify  call → ana@example.com  (step 3 call, climb 1 of 2, ignores quiet hours)
  +6m      redial  call → ana@example.com (attempt 1 of 2)
  +7m      redial  call → ana@example.com (attempt 2 of 2)
  +10m     notify  slack → group:oncall, slack:#ops  (step 1 chat, climb 2 of 2)
  +12m     notify  sms → group:oncall  (step 2, climb 2 of 2, ignores quiet hours at risk ≥ critical)
  +15m     notify  call → ana@example.com  (step 3 call, climb 2 of 2, ignores quiet hours)
  +16m     redial  call → ana@example.com (attempt 1 of 2)
  +17m     redial  call → ana@example.com (attempt 2 of 2)
  +18m     expire  nobody decided
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	b.Reset()
	bl := Builtin()
	bl.Version = 2
	FormatTimeline(&b, bl, Timeline(bl, 90*m, testKinds))
	want = `ladder builtin (builtin, version 2, order 100)
  match    default: any handoff no other ladder matches
  climbs   once, then the handoff waits in the console until its own timeout
  +0s      notify  console → role:admin, role:member  (step 1)
  +1h30m   expire  nobody decided
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	b.Reset()
	l = threeSteps(0, EndExpire)
	FormatTimeline(&b, l, Timeline(l, 0, testKinds))
	if got := b.String(); !strings.Contains(got, "  match    every handoff\n  climbs   once, 10m, then the handoff expires\n") ||
		!strings.HasSuffix(got, "  +10m     end     the ladder ran out; nobody decided, so the handoff expires\n") {
		t.Errorf("got\n%s", got)
	}
}

func TestFmtDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0: "0s", 90 * time.Second: "1m30s", 5 * m: "5m", time.Hour: "1h", 90 * m: "1h30m",
		time.Hour + time.Second: "1h0m1s", 500 * time.Millisecond: "500ms", 24 * time.Hour: "24h",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
