package escalation_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// A rung's job makes its sends itself (escalation.RunStepJob), and a handoff's create makes its first
// rung's (escalation.Engine.FirstRung). These tests hold both to every rung and every send exactly
// once: run twice, run by two replicas at once, stopped by a crash between the commit and the sends,
// and with a provider that fails.

const oneWideRung = `
name: wide
default: true
steps:
  - channels: [webhook, sms, slack]
    targets: [webhook:bridge, group:oncall]
    wait: 5m
end: wait
`

// wideHarness creates a handoff on oneWideRung. With byJob its rung is left to a step job, as every
// rung after the first is; otherwise the create runs it. crash, if set, is SetCrashAfterCommit's.
func wideHarness(t *testing.T, d string, byJob bool, crash func(escalation.StepArgs) bool) (*harness, store.Handoff) {
	h := newHarness(t, harnessOpts{ladders: []string{oneWideRung}, dialect: d})
	h.person("ana", oncall("U1", "+15550000001"))
	h.person("ben", oncall("U2", "+15550000002"))
	if byJob {
		escalation.SetFirstRungByJob(h.eng)
	}
	escalation.SetCrashAfterCommit(h.eng, crash)
	return h, h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
}

// rungPaths are the two ways a rung is run: by the handoff's create (the first) and by a step job.
var rungPaths = []struct {
	name  string
	byJob bool
}{{"create", false}, {"job", true}}

var wideLog = []string{
	"+0s slack/sim ana", "+0s slack/sim ben", "+0s sms/sim ana", "+0s sms/sim ben", "+0s webhook/builtin webhook:bridge",
}

func allSent(t *testing.T, h *harness, id string, want int) {
	t.Helper()
	sends := h.sends(id)
	if len(sends) != want {
		t.Errorf("%d send rows, want %d", len(sends), want)
	}
	for _, s := range sends {
		if s.State != store.SendSent {
			t.Errorf("send %s is %s (%s), want sent", s.Key, s.State, s.Detail)
		}
	}
}

// The same job run again (River's retry after it finished), another job for the same rung, and a run
// outside the job runner all find the rung done.
func TestRungRunTwiceSendsOnce(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		for _, p := range rungPaths {
			t.Run(d+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				h, ho := wideHarness(t, d, p.byJob, nil)
				step := escalation.StepArgs{OrgID: h.orgID, HandoffID: ho.ID}
				must(t, h.eng.RunStepJob(ctx, step, 1001))
				must(t, h.eng.RunStepJob(ctx, step, 1001))
				must(t, h.eng.RunStepJob(ctx, step, 1002))
				must(t, h.eng.RunStep(ctx, step))
				h.advance(time.Minute) // the rung's job if Create queued one, and anything the runs queued
				equal(t, "notifications", h.log(), wideLog)
				allSent(t, h, ho.ID, 5)
			})
		}
	}
}

// Two replicas run the rung at the same moment (two jobs for it): one claims it, the other adds nothing.
func TestTwoReplicasRunOneRungOnce(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			h, ho := wideHarness(t, d, true, nil)
			step := escalation.StepArgs{OrgID: h.orgID, HandoffID: ho.ID}
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { errs[i] = h.eng.RunStepJob(ctx, step, int64(2000+i)) })
			}
			wg.Wait()
			for _, err := range errs {
				must(t, err)
			}
			h.advance(time.Minute)
			equal(t, "notifications", h.log(), wideLog)
			allSent(t, h, ho.ID, 5)
		})
	}
}

// The process dies after the rung's transaction committed and before any send was made. The rows say
// "sending", so nothing else settles them. A step job is rescued by the job runner (45 s later here);
// a first rung run by the create has its rescue job, due 35 s later (the rung's 20 s deadline and the
// grace). Either run makes each send once, with a decision token that works.
func TestCrashAfterCommitSendsOnceOnRescue(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		for _, p := range rungPaths {
			t.Run(d+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				crashAfterCommitSendsOnceOnRescue(t, d, p.byJob)
			})
		}
	}
}

func crashAfterCommitSendsOnceOnRescue(t *testing.T, d string, byJob bool) {
	var crashes atomic.Int32
	h, ho := wideHarness(t, d, byJob, func(escalation.StepArgs) bool { return crashes.Add(1) == 1 })
	rescued := "+45s"
	if !byJob {
		rescued = "+" + (20*time.Second + escalation.RescueGrace).String()
	}
	h.advance(10 * time.Second)
	if crashes.Load() != 1 || len(h.log()) != 0 {
		t.Fatalf("%d crashes, notifications %q; want 1 crash before any", crashes.Load(), h.log())
	}
	for _, s := range h.sends(ho.ID) {
		if s.State != store.SendSending {
			t.Errorf("send %s is %s before the rescue, want sending", s.Key, s.State)
		}
	}
	h.advance(time.Minute)
	want := make([]string, len(wideLog))
	for i, l := range wideLog {
		want[i] = rescued + l[len("+0s"):]
	}
	equal(t, "notifications", h.log(), want)
	allSent(t, h, ho.ID, 5)

	// The token the rescued send carried decides; the crashed run's was never sent.
	var tok string
	for _, s := range h.sent {
		if s.channel == "sms/sim" && s.to == "ana" {
			tok = s.n.Token
		}
	}
	if tok == "" {
		t.Fatal("ana's sms carried no decision token")
	}
	got, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "deny", Channel: "sms"})
	if err != nil || got.Status != store.StatusDenied {
		t.Fatalf("decide with the rescued send's token: %s %v", got.Status, err)
	}
}

// flakySMS fails its first failures calls, then accepts.
type flakySMS struct{ failures *atomic.Int64 }

func (flakySMS) Kind() string                                 { return "sms" }
func (flakySMS) Provider() string                             { return "flaky" }
func (flakySMS) TakesDecisions() bool                         { return true }
func (flakySMS) Update(context.Context, channel.Update) error { return nil }
func (f flakySMS) Notify(_ context.Context, n channel.Notification) (channel.Delivery, error) {
	if f.failures.Add(-1) >= 0 {
		return channel.Delivery{}, errors.New("provider down")
	}
	return channel.Delivery{Ref: "flaky-" + n.Key, State: store.SendSent}, nil
}

// A provider that fails the rung's own attempt: the row reads provider_error (the rung after it does
// not wait for it) and a send job retries it 5 s later, once; the retry that gets through reads
// "retried". One that fails the retry too ends failed.
func TestProviderFailureRetriedBySendJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		failures int64
		want     []string
		state    store.SendState
		detail   string
	}{
		{1, []string{"+5s sms/flaky ana"}, store.SendSent, "retried"},
		{2, nil, store.SendFailed, "provider_error"},
	} {
		t.Run(fmt.Sprint(tc.failures), func(t *testing.T) {
			t.Parallel()
			var failures atomic.Int64
			failures.Store(tc.failures)
			h := newHarness(t, harnessOpts{ladders: []string{`
name: flaky
default: true
steps:
  - channels: [sms]
    targets: [ana@example.com]
    providers: {sms: [flaky]}
    wait: 1m
end: wait
`}, extra: []channel.Channel{flakySMS{&failures}}})
			h.person("ana", oncall("", "+15550000001"))
			ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
			h.advance(time.Second)
			if s := h.sends(ho.ID); len(s) != 1 || s[0].State != store.SendSending || s[0].Detail != "provider_error" {
				t.Fatalf("after the rung: %+v, want one send sending/provider_error", s)
			}
			h.advance(time.Minute)
			equal(t, "notifications", h.log(), tc.want)
			if s := h.sends(ho.ID); len(s) != 1 || s[0].State != tc.state || s[0].Detail != tc.detail {
				t.Errorf("after the retry: %+v, want one send %s/%s", s, tc.state, tc.detail)
			}
		})
	}
}

// A rung with more sends than its job makes itself hands the rest to send jobs: all are made once.
func TestWideRungOverflowsToSendJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: many
default: true
steps:
  - channels: [sms]
    targets: [group:oncall]
    wait: 5m
end: wait
`}})
	const people = 20
	var want []string
	for i := range people {
		name := fmt.Sprintf("p%02d", i)
		h.person(name, oncall("", fmt.Sprintf("+1555000%04d", i)))
		want = append(want, "+0s sms/sim "+name)
	}
	ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
	h.advance(time.Minute)
	got := h.log()
	slices.Sort(got) // the inline sends and the send jobs are separate runs
	equal(t, "notifications", got, want)
	allSent(t, h, ho.ID, people)
}

// A rung waiting for sends the rung before it claimed a moment ago (its job is making them now) looks
// again soon; one waiting for sends claimed long ago (a process that died) sleeps the full second.
func TestRungWaitingForFreshSendsSnoozesBriefly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: two
default: true
steps:
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 1s
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 1m
end: wait
`}})
	escalation.SetCrashAfterCommit(h.eng, func(a escalation.StepArgs) bool { return a.Step == 0 })
	ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour}) // rung 0 claims its send, and stops
	next := escalation.StepArgs{OrgID: h.orgID, HandoffID: ho.ID, Step: 1}
	h.clock.set(h.start.Add(time.Second))
	err := h.eng.RunStepJob(ctx, next, 2)
	if !errors.Is(err, escalation.ErrRungUnderWay) || escalation.SnoozeOf(err) != 100*time.Millisecond {
		t.Errorf("rung 1 just after rung 0 claimed its send: %v, snooze %s; want under way, 100ms", err, escalation.SnoozeOf(err))
	}
	h.clock.set(h.start.Add(5 * time.Second))
	err = h.eng.RunStepJob(ctx, next, 2)
	if !errors.Is(err, escalation.ErrRungUnderWay) || escalation.SnoozeOf(err) != time.Second {
		t.Errorf("rung 1 5 s after rung 0 claimed its send: %v, snooze %s; want under way, 1s", err, escalation.SnoozeOf(err))
	}
}

// The create runs the first rung. Its sends are made after the create returns, and its rescue job,
// needed only until they have settled, is cancelled then; the next rung's job stays. A first rung
// with nothing to send writes no rescue at all: nobody in the group, or only the console, whose rows
// are written delivered (channel.Kind.Inbox) without a call to its provider.
func TestFirstRungRescueCancelledOnceSent(t *testing.T) {
	t.Parallel()
	const ladder = `
name: two
default: true
steps:
  - channels: [%s]
    targets: [%s]
    wait: 1m
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 1m
end: wait
`
	for _, d := range testdb.Dialects {
		for _, c := range []struct {
			name, channels, targets string
			log                     []string
			rescue                  bool
		}{
			{"sends", "webhook, sms", "webhook:bridge, group:oncall", []string{"+0s sms/sim ana", "+0s webhook/builtin webhook:bridge"}, true},
			{"nobody", "sms", "group:nobody", nil, false},
			{"console", "console", "group:oncall", []string{"+0s console/builtin ana"}, false},
		} {
			t.Run(d+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, harnessOpts{ladders: []string{fmt.Sprintf(ladder, c.channels, c.targets)}, dialect: d})
				h.person("ana", oncall("U1", "+15550000001"))
				ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
				equal(t, "notifications", h.log(), c.log)
				var steps []escalation.StepArgs
				for _, j := range h.st.queued() {
					if a, ok := j.args.(escalation.StepArgs); ok && a.HandoffID == ho.ID {
						steps = append(steps, a)
					}
				}
				if len(steps) != 1 || steps[0].Step != 1 {
					t.Errorf("step jobs queued after the create %+v, want only rung 1's", steps)
				}
				for _, s := range h.sent {
					if s.channel == "console/builtin" && !s.inbox {
						t.Error("the console's provider was called")
					}
				}
				rows, err := h.eng.Timeline(ctx, h.orgID, ho.ID)
				must(t, err)
				for _, r := range rows {
					if r.State == store.SendStepDone && strings.Contains(r.Detail, " job=") != c.rescue {
						t.Errorf("rung %d.%d's marker %q; want a rescue named: %v", r.Climb, r.Step, r.Detail, c.rescue)
					}
				}
			})
		}
	}
}
