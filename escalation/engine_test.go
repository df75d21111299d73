package escalation_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

const threeRungs = `
name: three
default: true
steps:
  - channels: [console, slack]
    targets: [group:oncall]
    wait: 5m
  - channels: [sms]
    targets: [group:oncall]
    wait: 5m
  - name: phone
    channels: [call]
    targets: [ana@example.com]
    wait: 5m
end: expire
`

// oncall puts a person in group oncall with a Slack id and a verified phone (either may be "").
func oncall(slack, phone string) func(*store.User) {
	return func(u *store.User) {
		u.Groups = []string{"oncall"}
		at := u.CreatedAt
		for kind, addr := range map[string]string{"slack": slack, "phone": phone} {
			if addr != "" {
				u.Contacts = append(u.Contacts, store.Contact{UserID: u.ID, Kind: kind, Address: addr, VerifiedAt: &at, CreatedAt: at})
			}
		}
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestLadderClimbsInOrderAndEndsExpired(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			climbsInOrder(t, d)
		})
	}
}

func climbsInOrder(t *testing.T, dialect string) {
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}, dialect: dialect})
	h.person("ana", oncall("U1", "+15550000001"))
	h.person("ben", oncall("U2", "")) // no phone: skipped on sms, shown as such
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	if ho.LadderName != "three" || len(ho.Ladder) == 0 {
		t.Fatalf("ladder not frozen onto the handoff: %q", ho.LadderName)
	}
	h.advance(2 * time.Hour)
	equal(t, "notifications", h.log(), []string{
		"+0s console/builtin ana", "+0s console/builtin ben", "+0s slack/sim ana", "+0s slack/sim ben",
		"+5m0s sms/sim ana",
		"+10m0s call/sim ana",
	})
	got := h.get(ho.ID)
	if got.Status != store.StatusExpired || got.Decision.ByID != "ladder" {
		t.Fatalf("after the ladder: %s by %+v, want expired by the ladder", got.Status, got.Decision)
	}
	if d := got.Decision.DecidedAt.Sub(h.start); d != 15*time.Minute {
		t.Errorf("expired at +%s, want +15m (end of the ladder)", d)
	}
	var skipped []string
	for _, s := range h.sends(ho.ID) {
		if s.State == store.SendSkipped {
			skipped = append(skipped, s.Channel+" "+s.Detail)
		}
	}
	equal(t, "skipped", skipped, []string{"sms no_contact"})
	// Everything delivered was rewritten with the outcome.
	ups := h.sims["slack"].Updates()
	if len(ups) != 2 || !strings.HasPrefix(ups[0].Text, "Expired without a decision") {
		t.Errorf("slack updates = %+v", ups)
	}
	if n := len(h.sims["call"].Updates()); n != 1 {
		t.Errorf("call updates = %d, want 1", n)
	}
}

func TestDecisionStopsTheLadder(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			decisionStops(t, d)
		})
	}
}

func decisionStops(t *testing.T, dialect string) {
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}, dialect: dialect})
	h.person("ana", func(u *store.User) { oncall("U1", "+15550000001")(u); u.Timezone = "Europe/Berlin" })
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(6 * time.Minute)
	if _, err := h.svc.Decide(ctx, h.member("ana"), ho.ID, "approve", "", "console"); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	equal(t, "notifications", h.log(), []string{"+0s console/builtin ana", "+0s slack/sim ana", "+5m0s sms/sim ana"})
	ups := h.sims["sms"].Updates()
	// 12:06 UTC is 14:06 in Berlin in June: the update speaks the recipient's time.
	if len(ups) != 1 || ups[0].Text != "Approved by ana via console, 14:06 CEST" {
		t.Errorf("sms updates = %+v", ups)
	}
	if got := h.get(ho.ID); got.Status != store.StatusApproved {
		t.Errorf("status %s", got.Status)
	}
}

func TestRepeatClimbsAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: twice
default: true
steps:
  - channels: [slack]
    targets: [group:oncall]
    wait: 10m
repeat: 2
end: wait
`}})
	h.person("ana", oncall("U1", ""))
	ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
	h.advance(2 * time.Hour)
	equal(t, "notifications", h.log(), []string{"+0s slack/sim ana", "+10m0s slack/sim ana", "+20m0s slack/sim ana"})
	// end: wait leaves it to the handoff's own timeout.
	if got := h.get(ho.ID); got.Status != store.StatusExpired || got.Decision.ByID != "expiry" || got.Decision.DecidedAt.Sub(h.start) != time.Hour {
		t.Errorf("got %s by %+v", got.Status, got.Decision)
	}
}

func TestRedialUntilAnswered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: call
default: true
steps:
  - channels: [call]
    targets: [ana@example.com, ben@example.com]
    redial: {times: 2, gap: 1m}
    wait: 10m
`}})
	h.person("ana", oncall("", "+15550000001"))
	h.person("ben", oncall("", "+15550000002"))
	h.sims["call"].Behave = func(n channel.Notification) (channel.Delivery, error) {
		// Ana never picks up; Ben answers the second call.
		if n.Recipient.Name == "ben" && n.Attempt == 1 {
			return channel.Delivery{Ref: "c", State: store.SendAnswered}, nil
		}
		return channel.Delivery{Ref: "c", State: store.SendNoAnswer}, nil
	}
	h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Hour)
	equal(t, "calls", h.log(), []string{"+0s call/sim ana", "+0s call/sim ben", "+1m0s call/sim ana", "+1m0s call/sim ben", "+2m0s call/sim ana"})
}

func TestQuietHoursInEachPersonsTimezone(t *testing.T) {
	t.Parallel()
	ladder := func(name, extra string) string {
		return fmt.Sprintf(`
name: %s
default: true
steps:
  - channels: [console, sms]
    targets: [group:oncall]
    wait: 1m
%s`, name, extra)
	}
	cases := []struct {
		name   string
		start  time.Time
		ladder string
		risk   map[string]string // labels that raise risk
		want   []string
		quiet  int
	}{
		// 03:30 UTC is 23:30 in New York (quiet) and 12:30 in Tokyo (awake).
		{"respect", time.Date(2026, 6, 1, 3, 30, 0, 0, time.UTC), ladder("q", ""), nil,
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ben"}, 1},
		{"ignore", time.Date(2026, 6, 1, 3, 30, 0, 0, time.UTC), ladder("q", "    quiet_hours: ignore\n"), nil,
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ana", "+0s sms/sim ben"}, 0},
		{"override below the risk", time.Date(2026, 6, 1, 3, 30, 0, 0, time.UTC), ladder("q", "    override_quiet_hours_at: critical\n"), nil,
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ben"}, 1},
		{"override at the risk", time.Date(2026, 6, 1, 3, 30, 0, 0, time.UTC), ladder("q", "    override_quiet_hours_at: medium\n"),
			map[string]string{"env": "production"},
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ana", "+0s sms/sim ben"}, 0},
		// DST: New York springs forward at 07:00 UTC on 2026-03-08. 06:30 UTC is 01:30 EST (quiet,
		// 00:00-03:00); 07:30 UTC is 03:30 EDT (awake) — a fixed UTC-5 offset would say 02:30, quiet.
		{"before spring forward", time.Date(2026, 3, 8, 6, 30, 0, 0, time.UTC), ladder("q", ""), nil,
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ben"}, 1},
		{"after spring forward", time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC), ladder("q", ""), nil,
			[]string{"+0s console/builtin ana", "+0s console/builtin ben", "+0s sms/sim ana", "+0s sms/sim ben"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{ladders: []string{tc.ladder}, start: tc.start})
			quiet := "22:00-07:00"
			if tc.start.Month() == time.March {
				quiet = "00:00-03:00"
			}
			h.person("ana", func(u *store.User) {
				oncall("", "+15550000001")(u)
				u.Timezone, u.QuietHours = "America/New_York", quiet
			})
			h.person("ben", func(u *store.User) {
				oncall("", "+15550000002")(u)
				u.Timezone, u.QuietHours = "Asia/Tokyo", quiet
			})
			ho := h.create(handoff.CreateRequest{Action: "deploy", Labels: tc.risk})
			h.advance(30 * time.Second)
			equal(t, "notifications", h.log(), tc.want)
			n := 0
			for _, s := range h.sends(ho.ID) {
				if s.State == store.SendQuiet {
					n++
				}
			}
			if n != tc.quiet {
				t.Errorf("%d quiet sends, want %d", n, tc.quiet)
			}
		})
	}
}

func TestExpiryLandsAsExpired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}})
	h.person("ana", oncall("U1", "+15550000001"))
	ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: 7 * time.Minute})
	h.advance(time.Hour)
	got := h.get(ho.ID)
	if got.Status != store.StatusExpired || got.Decision.ByID != "expiry" || got.Decision.DecidedAt.Sub(h.start) != 7*time.Minute {
		t.Fatalf("got %s %+v", got.Status, got.Decision)
	}
	equal(t, "notifications", h.log(), []string{"+0s console/builtin ana", "+0s slack/sim ana", "+5m0s sms/sim ana"})
}

func TestFailoverAndCaps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: sms
default: true
steps:
  - channels: [sms]
    targets: [ana@example.com]
    providers: {sms: [down, sim]}
    wait: 1m
  - channels: [slack]
    targets: [ana@example.com]
    wait: 1m
`}, limits: map[string]escalation.Limit{"sms": {PerUserHour: 1}}, extra: []channel.Channel{downSMS{}}})
	h.person("ana", oncall("U1", "+15550000001"))
	first := h.create(handoff.CreateRequest{Action: "deploy"})
	second := h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(10 * time.Minute)
	// The first SMS fails over from "down" to "sim"; the second hits the hourly cap and the ladder
	// moves on to Slack all the same.
	equal(t, "notifications", h.log(), []string{"+0s sms/sim ana", "+1m0s slack/sim ana", "+1m0s slack/sim ana"})
	if s := h.sends(first.ID); s[0].Provider != "sim" || s[0].State != store.SendSent {
		t.Errorf("first sms: %+v", s[0])
	}
	if s := h.sends(second.ID); s[0].State != store.SendCapped || s[0].Detail != "sms_per_user_hour" {
		t.Errorf("second sms: %+v", s[0])
	}
	st := h.eng.Stats()
	if st.Failovers.Load() != 1 || st.Capped.Load() != 1 {
		t.Errorf("failovers %d capped %d", st.Failovers.Load(), st.Capped.Load())
	}
}

// downSMS is an SMS provider that is down.
type downSMS struct{}

func (downSMS) Kind() string                                 { return "sms" }
func (downSMS) Provider() string                             { return "down" }
func (downSMS) TakesDecisions() bool                         { return true }
func (downSMS) Update(context.Context, channel.Update) error { return nil }
func (downSMS) Notify(context.Context, channel.Notification) (channel.Delivery, error) {
	return channel.Delivery{}, errors.New("provider down")
}

func TestRungsAndSendsRunOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}})
	h.person("ana", oncall("U1", "+15550000001"))
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	step := escalation.StepArgs{OrgID: h.orgID, HandoffID: ho.ID}
	send := escalation.SendArgs{OrgID: h.orgID, HandoffID: ho.ID, Channel: "slack", Target: h.users["ana"].ID}
	// A replica or a retry running the same rung and the same send again adds nothing.
	for range 3 {
		must(t, h.eng.RunStep(ctx, step))
		must(t, h.eng.RunSend(ctx, send, false))
	}
	h.advance(time.Minute)
	equal(t, "notifications", h.log(), []string{"+0s console/builtin ana", "+0s slack/sim ana"})
}

func TestDecisionTokenDecidesOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: sms
default: true
steps:
  - channels: [sms, console]
    targets: [ana@example.com]
end: wait
`}})
	h.person("ana", oncall("U1", "+15550000001"))
	h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Second)
	var tok string
	for _, s := range h.sent {
		if s.inbox {
			continue // the console's row: no notification, no token
		}
		if s.channel == "sms/sim" {
			tok = s.n.Token
		}
		if s.n.Gist == "" || s.n.Action != "deploy" || s.n.Risk == "" {
			t.Errorf("notification lacks what a person needs: %+v", s.n)
		}
	}
	if !strings.HasPrefix(tok, "ony_dt_") {
		t.Fatalf("sms token %q", tok)
	}
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "nope", Channel: "sms"}); code(err) != "unknown_option" {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "deny", Channel: "slack"}); code(err) != "invalid_decision_token" {
		t.Errorf("a token sent by SMS, used on another channel: %v", err)
	}
	got, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "deny", Channel: "sms"})
	if err != nil || got.Status != store.StatusDenied || got.Decision.ByID != h.users["ana"].ID || got.Decision.Channel != "sms" {
		t.Fatalf("decide: %+v %v", got.Decision, err)
	}
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "approve", Channel: "sms"}); code(err) != "already_final" {
		t.Errorf("second use: %v", err)
	}
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: "ony_dt_" + strings.Repeat("A", 43), Option: "approve", Channel: "sms"}); code(err) != "invalid_decision_token" {
		t.Errorf("unknown token: %v", err)
	}
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: "garbage", Option: "approve", Channel: "sms"}); code(err) != "invalid_decision_token" {
		t.Errorf("garbage token: %v", err)
	}
}

func TestDecisionTokenRefusedForDeactivatedPerson(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: sms
default: true
steps:
  - channels: [sms]
    targets: [ana@example.com]
end: wait
`}})
	ana := h.person("ana", oncall("U1", "+15550000001"))
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Second)
	tok := h.sent[0].n.Token
	ana.Active = false
	must(t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, ana) }))
	if _, err := h.svc.DecideAnswer(ctx, handoff.Answer{Token: tok, Option: "approve", Channel: "sms"}); code(err) != "role_cannot_decide" {
		t.Errorf("deactivated: %v", err)
	}
	if got := h.get(ho.ID); got.Status != store.StatusPending {
		t.Errorf("status %s", got.Status)
	}
}

func TestPutLadderVersionsAndFreezes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}})
	h.person("ana", oncall("U1", "+15550000001"))
	admin := h.person("root", func(u *store.User) { u.Role = store.RoleAdmin })
	before := h.create(handoff.CreateRequest{Action: "deploy"})

	replacement := strings.Replace(threeRungs, "wait: 5m", "wait: 1m", 1)
	as := escalation.Admin{OrgID: h.orgID, UserID: admin.ID, Role: store.RoleAdmin}
	if _, err := h.eng.PutLadder(ctx, escalation.Admin{OrgID: h.orgID, UserID: h.users["ana"].ID, Role: store.RoleMember}, "three", []byte(replacement)); code(err) != "admins_only" {
		t.Errorf("member put: %v", err)
	}
	if _, err := h.eng.PutLadder(ctx, as, "other", []byte(replacement)); code(err) != "ladder_name_mismatch" {
		t.Errorf("mismatch: %v", err)
	}
	if _, err := h.eng.PutLadder(ctx, as, "three", []byte("name: three\nsteps: nope\n")); code(err) != "invalid_ladder" {
		t.Errorf("invalid: %v", err)
	}
	if _, err := h.eng.PutLadder(ctx, as, "three", []byte(strings.Replace(replacement, "group:oncall]", "group:oncall, webhook:nope]", 1))); err == nil {
		t.Error("unknown webhook accepted")
	}
	for v := 1; v <= 2; v++ {
		l, err := h.eng.PutLadder(ctx, as, "three", []byte(replacement))
		if err != nil || l.Version != v || l.Origin != "api" {
			t.Fatalf("put %d: %+v %v", v, l, err)
		}
	}
	after := h.create(handoff.CreateRequest{Action: "deploy"})
	if before.LadderVersion != 0 || after.LadderVersion != 2 {
		t.Errorf("frozen versions: before %d after %d", before.LadderVersion, after.LadderVersion)
	}
	h.advance(3 * time.Minute)
	// The old handoff keeps its 5-minute first rung; the new one climbs after 1 minute.
	equal(t, "notifications", h.log(), []string{"+0s console/builtin ana", "+0s slack/sim ana", "+0s console/builtin ana", "+0s slack/sim ana", "+1m0s sms/sim ana"})
	infos, err := h.eng.OrgLadders(ctx, h.orgID)
	if err != nil || len(infos) != 1 || infos[0].Ladder.Version != 2 || string(infos[0].Source) != replacement {
		t.Errorf("org ladders: %+v %v", infos, err)
	}
}

func code(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	if err != nil {
		return "untyped: " + err.Error()
	}
	return ""
}

// A provider that learns a call's outcome later (its status callback) reports it through Report; a
// duplicate report redials once, and the redial uses a new attempt key.
func TestReportedNoAnswerRedialsOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{`
name: call
default: true
steps:
  - channels: [call]
    targets: [ana@example.com]
    redial: {times: 1, gap: 2m}
    wait: 10m
end: wait
`}})
	h.person("ana", oncall("", "+15550000001"))
	h.sims["call"].Behave = func(n channel.Notification) (channel.Delivery, error) {
		return channel.Delivery{Ref: "CA1", State: store.SendSent}, nil // ringing; the outcome comes later
	}
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	h.advance(time.Second)
	sends := h.sends(ho.ID)
	if len(sends) != 1 || sends[0].State != store.SendSent || sends[0].Ref != "CA1" {
		t.Fatalf("sends %+v", sends)
	}
	for range 2 {
		must(t, h.eng.Report(ctx, "sim", "CA1", store.SendNoAnswer))
	}
	if err := h.eng.Report(ctx, "sim", "no-such-call", store.SendNoAnswer); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown call: %v", err)
	}
	if err := h.eng.Report(ctx, "other", "CA1", store.SendNoAnswer); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another provider's call: %v", err)
	}
	if err := h.eng.Report(ctx, "sim", "CA1", store.SendSending); err == nil {
		t.Error("a provider reported a state that is not an outcome")
	}
	h.advance(time.Hour)
	equal(t, "calls", h.log(), []string{"+0s call/sim ana", "+2m1s call/sim ana"})
	sends = h.sends(ho.ID)
	if len(sends) != 2 || sends[0].State != store.SendNoAnswer || sends[1].Attempt != 1 {
		t.Errorf("sends %+v", sends)
	}
}

// A person deactivated after a rung claimed their sends, and before they were made (the process died
// in between), is not paged when the rung's rescue runs: the sends are skipped. The console's inbox
// row was the delivery itself, written with the claim while they could still decide.
func TestDeactivatedBeforeTheSendIsNotPaged(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{threeRungs}})
	ana := h.person("ana", oncall("U1", "+15550000001"))
	escalation.SetCrashAfterCommit(h.eng, func(escalation.StepArgs) bool { return true })
	ho := h.create(handoff.CreateRequest{Action: "deploy"})
	escalation.SetCrashAfterCommit(h.eng, nil)
	ana.Active = false
	must(t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, ana) }))
	h.advance(time.Minute) // the first rung's rescue job, due 35 s after the create
	equal(t, "notifications", h.log(), []string{"+0s console/builtin ana"})
	sends := h.sends(ho.ID)
	if len(sends) != 2 {
		t.Fatalf("%d send rows, want the console's and slack's", len(sends))
	}
	for _, s := range sends {
		if want := (s.Channel == "console" && s.State == store.SendDelivered) ||
			(s.Channel == "slack" && s.State == store.SendSkipped && s.Detail == "cannot_decide"); !want {
			t.Errorf("send %+v", s)
		}
	}
}
