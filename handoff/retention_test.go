package handoff_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

// retentionOrg is an organization made the way the product makes one (so its audit log accounts for
// every handoff and VerifyOrg can check it), with an agent and its admin as a decider.
type retentionOrg struct {
	id          string
	dev, admin  handoff.Actor
	adminUserID string
}

func newRetentionOrg(t *testing.T, e env, name string, days int) retentionOrg {
	t.Helper()
	ctx := context.Background()
	sv := org.Service{Store: e.store, Audit: e.audit, Now: e.clock.now}
	sys := audit.Actor{Kind: "system", ID: "test"}
	o, err := sv.Create(ctx, sys, org.NewOrg{Name: name, AdminEmail: strings.ToLower(name) + "@retention.test",
		Password: "a long enough passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := sv.CreateDevice(ctx, sys, o.OrgID, "agent")
	if err != nil {
		t.Fatal(err)
	}
	if days > 0 {
		admin := audit.Actor{Kind: "user", ID: o.AdminID, Role: "admin"}
		if err := sv.UpdateSettings(ctx, admin, o.OrgID, org.Settings{StepUpRisks: []string{}, PayloadRetentionDays: days}); err != nil {
			t.Fatal(err)
		}
	}
	return retentionOrg{id: o.OrgID, adminUserID: o.AdminID,
		dev:   handoff.Actor{OrgID: o.OrgID, Kind: store.ActorDevice, ID: d.DeviceID},
		admin: handoff.Actor{OrgID: o.OrgID, Kind: store.ActorUser, ID: o.AdminID, Name: "Admin", Role: store.RoleAdmin}}
}

func (o retentionOrg) create(t *testing.T, e env, content string) store.Handoff {
	t.Helper()
	c, err := e.svc.Create(context.Background(), o.dev, handoff.CreateRequest{Action: "shell.exec", Title: "clean up",
		Payload: &handoff.Payload{Kind: "command", Content: content}}, "")
	if err != nil {
		t.Fatal(err)
	}
	return c.Handoff
}

func (o retentionOrg) get(t *testing.T, e env, id string) store.Handoff {
	t.Helper()
	h, err := e.svc.Get(context.Background(), o.admin, id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loggedEvents verifies the org's whole log (against itself and the org's handoffs) and returns its
// events in order.
func loggedEvents(t *testing.T, e env, orgID string) []audit.Event {
	t.Helper()
	ctx := context.Background()
	rep, err := e.audit.VerifyOrg(ctx, e.store, orgID)
	if err != nil || !rep.OK() {
		t.Fatalf("the log does not verify: %+v, %v", rep, err)
	}
	leaves, err := e.audit.Leaves(ctx, e.store, orgID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]audit.Event, 0, len(leaves))
	for _, l := range leaves {
		ev, err := audit.Decode(l.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// scrubLeaves returns the payload.scrubbed events in the org's verified log.
func scrubLeaves(t *testing.T, e env, orgID string) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, ev := range loggedEvents(t, e, orgID) {
		if ev.Type == audit.PayloadScrubbed {
			out = append(out, ev)
		}
	}
	return out
}

// TestRetentionSweep: the sweep scrubs exactly the payloads of final handoffs older than the org's
// window — not a pending one, not a recent one, not those of an org that keeps payloads — keeps every
// other field and the log, records one leaf per org with the count, and a second sweep changes and
// records nothing. A dry run before it counts the same and changes nothing.
func TestRetentionSweep(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, d)
			a := newRetentionOrg(t, e, "Scrubs", 30)
			keep := newRetentionOrg(t, e, "Keeps", 0) // retention off: payloads stay, however old

			decided := a.create(t, e, "rm -rf /tmp/decided")
			if _, err := e.svc.Decide(ctx, a.admin, decided.ID, "approve", "", "console"); err != nil {
				t.Fatal(err)
			}
			cancelled := a.create(t, e, "rm -rf /tmp/cancelled")
			if _, err := e.svc.Cancel(ctx, a.dev, cancelled.ID, ""); err != nil {
				t.Fatal(err)
			}
			pending := a.create(t, e, "rm -rf /tmp/pending") // old, but the deciders still need it
			kept := keep.create(t, e, "rm -rf /tmp/kept")
			if _, err := e.svc.Decide(ctx, keep.admin, kept.ID, "deny", "", "console"); err != nil {
				t.Fatal(err)
			}
			e.clock.add(31 * 24 * time.Hour)
			recent := a.create(t, e, "rm -rf /tmp/recent") // final, inside the window
			if _, err := e.svc.Decide(ctx, a.admin, recent.ID, "deny", "", "console"); err != nil {
				t.Fatal(err)
			}
			before := map[string]store.Handoff{}
			for _, id := range []string{decided.ID, cancelled.ID, pending.ID, recent.ID} {
				before[id] = a.get(t, e, id)
			}
			before[kept.ID] = keep.get(t, e, kept.ID)

			r := &handoff.Retention{Store: e.store, Audit: e.audit, Clock: e.clock.now, Logger: testdb.Discard, Batch: 1}
			byOrg := func(res []handoff.RetentionResult) map[string]handoff.RetentionResult {
				m := map[string]handoff.RetentionResult{}
				for _, x := range res {
					m[x.OrgID] = x
				}
				return m
			}
			// The dry run counts, and changes nothing.
			res, err := r.Sweep(ctx, true)
			if err != nil {
				t.Fatal(err)
			}
			got := byOrg(res)
			if got[a.id] != (handoff.RetentionResult{OrgID: a.id, Days: 30, Scrubbed: 2}) || got[keep.id] != (handoff.RetentionResult{OrgID: keep.id}) {
				t.Fatalf("dry run: %+v", res)
			}
			for _, id := range []string{decided.ID, cancelled.ID} {
				if h := a.get(t, e, id); !h.PayloadKept {
					t.Fatalf("the dry run scrubbed %s", id)
				}
			}
			if n := len(scrubLeaves(t, e, a.id)); n != 0 {
				t.Fatalf("the dry run recorded %d leaves", n)
			}

			// The sweep, in batches of one statement per handoff.
			res, err = r.Sweep(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			got = byOrg(res)
			if got[a.id] != (handoff.RetentionResult{OrgID: a.id, Days: 30, Scrubbed: 2}) || got[keep.id] != (handoff.RetentionResult{OrgID: keep.id}) {
				t.Fatalf("sweep: %+v", res)
			}
			for id, was := range before {
				who := a
				if id == kept.ID {
					who = keep
				}
				h := who.get(t, e, id)
				scrubbed := id == decided.ID || id == cancelled.ID
				if handoff.PayloadRemoved(h) != scrubbed {
					t.Errorf("%s: payload removed = %v, want %v", id, handoff.PayloadRemoved(h), scrubbed)
				}
				want := was
				if scrubbed {
					want.PayloadKept = false
				}
				if !equalHandoffs(h, want) {
					t.Errorf("%s changed beyond its payload:\n got %+v\nwant %+v", id, h, want)
				}
				p, err := e.svc.Payload(ctx, h)
				switch {
				case err != nil:
					t.Errorf("%s: opening the payload: %v", id, err)
				case scrubbed && p.Content != "":
					t.Errorf("%s: scrubbed payload still opens", id)
				case !scrubbed && !strings.HasPrefix(p.Content, "rm -rf /tmp/"):
					t.Errorf("%s: kept payload reads %q", id, p.Content)
				}
				v := handoff.NewView(h, "https://ony.test")
				if v.Payload == nil || v.Payload.Kind != "command" || v.Payload.Bytes != was.PayloadSize || v.Payload.Removed != scrubbed {
					t.Errorf("%s: view payload %+v", id, v.Payload)
				}
			}
			evs := scrubLeaves(t, e, a.id)
			if len(evs) != 1 {
				t.Fatalf("%d payload.scrubbed leaves, want one per org per sweep", len(evs))
			}
			ev := evs[0]
			if ev.Subject != (audit.Subject{Kind: "org", ID: a.id}) || ev.Actor.Kind != "system" || ev.Details == nil ||
				ev.Details.Count != 2 || ev.Details.Days != 30 {
				t.Errorf("leaf %+v %+v", ev, ev.Details)
			}
			if n := len(scrubLeaves(t, e, keep.id)); n != 0 {
				t.Errorf("an org that keeps payloads got %d leaves", n)
			}

			// Again: nothing left to scrub, nothing recorded.
			if res, err = r.Sweep(ctx, false); err != nil || byOrg(res)[a.id].Scrubbed != 0 {
				t.Fatalf("second sweep: %+v, %v", res, err)
			}
			if n := len(scrubLeaves(t, e, a.id)); n != 1 {
				t.Errorf("the second sweep left %d leaves, want the first sweep's one", n)
			}

			// The instance default applies to the org that set none; the org's own window still wins.
			r.DefaultDays = 30
			if res, err = r.Sweep(ctx, false); err != nil || byOrg(res)[keep.id] != (handoff.RetentionResult{OrgID: keep.id, Days: 30, Scrubbed: 1}) {
				t.Fatalf("sweep with a default: %+v, %v", res, err)
			}
			if evs := scrubLeaves(t, e, keep.id); len(evs) != 1 || evs[0].Details.Count != 1 {
				t.Errorf("default sweep leaves: %+v", evs)
			}
			if h := a.get(t, e, pending.ID); handoff.PayloadRemoved(h) {
				t.Error("a pending handoff lost its payload")
			}
		})
	}
}

// TestRetentionBatchesPerTransaction: more payloads due than one transaction takes are scrubbed in
// several, each with its own leaf, and the counts add up.
func TestRetentionBatchesPerTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "sqlite")
	a := newRetentionOrg(t, e, "Many", 1)
	for range 5 {
		h := a.create(t, e, "echo hi")
		if _, err := e.svc.Decide(ctx, a.admin, h.ID, "approve", "", "console"); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.add(49 * time.Hour)
	r := &handoff.Retention{Store: e.store, Audit: e.audit, Clock: e.clock.now, Batch: 2, PerTx: 3}
	res, err := r.SweepOrg(ctx, a.id, false)
	if err != nil || res.Scrubbed != 5 || res.Days != 1 {
		t.Fatalf("sweep: %+v, %v", res, err)
	}
	var counts []int64
	for _, ev := range scrubLeaves(t, e, a.id) {
		counts = append(counts, ev.Details.Count)
	}
	if !slices.Equal(counts, []int64{3, 2}) {
		t.Errorf("leaf counts %v, want [3 2]", counts)
	}
}

func TestRetentionWindow(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ org, def, want int }{
		{0, 0, 0},   // off means keep
		{0, 30, 30}, // the instance default for an org that set none
		{7, 30, 7},  // the org's own window wins, shorter
		{90, 30, 90},
		{0, -1, 0},
	} {
		r := handoff.Retention{DefaultDays: c.def}
		if got := r.WindowDays(store.Org{PayloadRetentionDays: c.org}); got != c.want {
			t.Errorf("org %d, default %d: window %d, want %d", c.org, c.def, got, c.want)
		}
	}
}

// TestRetentionJobIsPeriodic: the sweep is among the jobs the leader schedules.
func TestRetentionJobIsPeriodic(t *testing.T) {
	t.Parallel()
	jobs := handoff.RetentionPeriodicJobs()
	if len(jobs) != 1 || !handoff.IsRetentionJob(jobs[0]) {
		t.Fatalf("retention periodic jobs: %v", jobs)
	}
	if (handoff.RetentionArgs{}).Kind() != "handoff.payload_retention" {
		t.Error("the job's kind changed: queued jobs carry it")
	}
}

func equalHandoffs(a, b store.Handoff) bool {
	return a.ID == b.ID && a.Status == b.Status && a.Title == b.Title && a.Gist == b.Gist && a.Risk == b.Risk &&
		a.PayloadKind == b.PayloadKind && a.PayloadSize == b.PayloadSize && a.PayloadKept == b.PayloadKept &&
		a.CreatedAt.Equal(b.CreatedAt) && ((a.Decision == nil) == (b.Decision == nil)) &&
		(a.Decision == nil || *a.Decision == *b.Decision) && slices.Equal(a.RiskReasons, b.RiskReasons)
}
