package escalation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

const twoRungsThenExpire = `
name: two
default: true
steps:
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 5m
  - channels: [webhook, sms]
    targets: [webhook:bridge, group:oncall]
    wait: 5m
end: expire
`

// After an outage the last rung and the ladder's end are overdue together. The queue takes the
// oldest-scheduled job first, and the end (scheduled at +10m) is older than the last rung's sends
// (scheduled when the rung ran, at +30m): unchecked, it expired the handoff and the rung's sends found
// it final. The end now waits for them.
func TestLadderEndWaitsForOverdueLastRung(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{ladders: []string{twoRungsThenExpire}, dialect: d})
			h.person("ana", oncall("", "+15550000001"))
			ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
			h.advance(time.Minute)
			// Nothing runs from +1m to +30m (the instance is down); then everything due runs.
			h.clock.set(h.start.Add(30 * time.Minute))
			h.advance(time.Hour)

			equal(t, "notifications", h.log(), []string{
				"+0s webhook/builtin webhook:bridge",
				"+30m0s sms/sim ana", "+30m0s webhook/builtin webhook:bridge",
			})
			for _, s := range h.sends(ho.ID) {
				if s.State != store.SendSent {
					t.Errorf("send %s is %s (%s), want sent", s.Key, s.State, s.Detail)
				}
			}
			if got := h.get(ho.ID); got.Status != store.StatusExpired {
				t.Fatalf("status %s, want expired", got.Status)
			}
			if h.expiredAt < 30*time.Minute {
				t.Errorf("the ladder ended at +%s, before its last rung's sends at +30m", h.expiredAt)
			}
			t.Logf("ladder ended at +%s after %d snooze(s)", h.expiredAt, h.snoozes)
		})
	}
}

const threeRungsThenExpire = `
name: three
default: true
steps:
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 5m
  - channels: [sms]
    targets: [group:oncall]
    wait: 5m
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 5m
end: expire
`

// A process dies after rung 1 committed its claim and before it sent: the send's row says "sending"
// and the rung's job is rescued only later (45 s here). Rung 2, and then the ladder's end, are overdue
// meanwhile. Rung 2 waits for rung 1's send and the end waits for rung 2's, so the notifications go
// out in ladder order and all of them before the handoff expires.
func TestRungsWaitForCrashedSend(t *testing.T) {
	t.Parallel()
	const rescue = 45 * time.Second
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{ladders: []string{threeRungsThenExpire}, dialect: d})
			h.person("ana", oncall("", "+15550000001"))
			ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: time.Hour})
			crashed := false
			h.rescueAfter = rescue
			escalation.SetCrashAfterCommit(h.eng, func(a escalation.StepArgs) bool {
				if a.Step != 1 || crashed {
					return false
				}
				crashed = true
				return true
			})
			h.advance(time.Minute)
			h.clock.set(h.start.Add(30 * time.Minute))
			h.advance(time.Hour)

			if !crashed {
				t.Fatal("rung 1's send never came to be held")
			}
			log := h.log()
			equal(t, "notifications", log, []string{
				"+0s webhook/builtin webhook:bridge",
				"+30m45s sms/sim ana",
				"+30m45s webhook/builtin webhook:bridge",
			})
			if got := h.get(ho.ID); got.Status != store.StatusExpired {
				t.Fatalf("status %s, want expired", got.Status)
			}
			if len(log) > 0 {
				lastAt, _, _ := strings.Cut(strings.TrimPrefix(log[len(log)-1], "+"), " ")
				if last, err := time.ParseDuration(lastAt); err != nil || h.expiredAt < last {
					t.Errorf("the ladder ended at +%s, before its last notification at +%s", h.expiredAt, lastAt)
				}
			}
			states := map[string]int{}
			for _, s := range h.sends(ho.ID) {
				states[string(s.State)]++
			}
			if states[string(store.SendSent)] != 3 || len(states) != 1 {
				t.Errorf("send states %v, want 3 sent", states)
			}
			t.Logf("rung 1 sent %s late (the rescue); rung 2 and the end waited: ended at +%s after %d snoozes", rescue, h.expiredAt, h.snoozes)
		})
	}
}

const shortLastRung = `
name: short
default: true
steps:
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 5m
  - channels: [webhook, sms]
    targets: [webhook:bridge, group:oncall]
    wait: 1m
end: expire
`

// The wait is bounded: a send that never settles (its job lost) holds the ladder's end for EndGrace
// after the last rung ran, not until the handoff's timeout.
func TestLadderEndGivesUpOnLostSend(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{ladders: []string{shortLastRung}})
	h.person("ana", oncall("", "+15550000001"))
	ho := h.create(handoff.CreateRequest{Action: "deploy", Timeout: 24 * time.Hour})
	// Rung 2's job dies after its commit and is never retried: its sends are lost for good.
	h.rescueAfter = -1
	escalation.SetCrashAfterCommit(h.eng, func(a escalation.StepArgs) bool { return a.Step == 1 })
	h.advance(2 * time.Hour)
	if got := h.get(ho.ID); got.Status != store.StatusExpired {
		t.Fatalf("status %s, want expired", got.Status)
	}
	// The last rung ran at +5m; its end was due at +6m.
	end := 5*time.Minute + escalation.EndGrace
	if h.expiredAt < end || h.expiredAt > end+time.Second {
		t.Errorf("the ladder ended at +%s, want at +%s (when its last rung ran plus EndGrace)", h.expiredAt, end)
	}
	equal(t, "notifications", h.log(), []string{"+0s webhook/builtin webhook:bridge"})
	for _, s := range h.sends(ho.ID) {
		if want := map[int]store.SendState{0: store.SendSent, 1: store.SendSending}[s.Step]; s.State != want {
			t.Errorf("send %s is %s, want %s", s.Key, s.State, want)
		}
	}
}
