package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestDecide covers approving, denying, custom options, refusals and the first-decision-wins rule.
func TestDecide(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		ag := in.Agent(t)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		viewer := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Viewer.ID))
		admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
		decide := func(c *caller, id, option, comment string) resp {
			return c.do("POST", "/v1/handoffs/"+id+"/decide", map[string]string{"option": option, "comment": comment})
		}

		t.Run("approve", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("approve me"))
			before := time.Now().UTC().Add(-time.Second)
			got := decide(member, h.ID, "approve", "looks fine").handoff(t, http.StatusOK)
			after := time.Now().UTC().Add(time.Second)
			if got.Status != "approved" || got.ID != h.ID {
				t.Fatalf("status %q", got.Status)
			}
			dv := got.Decision
			if dv == nil || dv.Option != "approve" || !dv.Approved || dv.Channel != "api" || dv.Comment != "looks fine" || dv.Outcome != "approved" {
				t.Fatalf("decision = %+v", dv)
			}
			if dv.By == nil || *dv.By != (client.Decider{Kind: "user", ID: in.Member.ID, Name: "Mia Member"}) {
				t.Fatalf("by = %+v", dv.By)
			}
			if dv.DecidedAt.Before(before) || dv.DecidedAt.After(after) {
				t.Fatalf("decided_at %v", dv.DecidedAt)
			}
			// The stored state matches what the decide call answered, for the agent too.
			stored, err := ag.Get(ctxT(t), h.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Status != "approved" || stored.Decision == nil || !stored.Decision.DecidedAt.Equal(dv.DecidedAt) || *stored.Decision.By != *dv.By {
				t.Fatalf("stored = %+v", stored.Decision)
			}
		})

		t.Run("deny", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("deny me"))
			r := decide(admin, h.ID, "deny", "")
			got := r.handoff(t, http.StatusOK)
			if got.Status != "denied" || got.Decision == nil || got.Decision.Approved || got.Decision.Option != "deny" ||
				got.Decision.By == nil || got.Decision.By.ID != in.Admin.ID || got.Decision.Outcome != "denied" {
				t.Fatalf("got %+v / %+v", got, got.Decision)
			}
			if dec, _ := r.object(t)["decision"].(map[string]any); dec == nil || dec["comment"] != nil || dec["approved"] != false {
				t.Fatalf("raw decision %v: want approved false and no empty comment", dec)
			}
		})

		t.Run("custom options", func(t *testing.T) {
			opts := []client.Option{{ID: "retry", Label: "Retry", Approves: true}, {ID: "skip", Label: "Skip", Approves: false}, {ID: "rollback", Label: "Roll back", Approves: false}}
			for _, tc := range []struct {
				option, status string
				approved       bool
			}{{"retry", "approved", true}, {"skip", "denied", false}, {"rollback", "denied", false}} {
				h := mustCreate(t, ag, client.CreateRequest{Action: "ci.retry", Title: "Flaky " + tc.option, Options: opts})
				got := decide(member, h.ID, tc.option, "").handoff(t, http.StatusOK)
				if got.Status != tc.status || got.Decision.Approved != tc.approved || got.Decision.Option != tc.option {
					t.Fatalf("%s: %s approved=%v option=%q", tc.option, got.Status, got.Decision.Approved, got.Decision.Option)
				}
			}
			// Default option ids do not exist on a custom set.
			h := mustCreate(t, ag, client.CreateRequest{Action: "ci.retry", Title: "custom only", Options: opts})
			decide(member, h.ID, "approve", "").wantErr(t, http.StatusBadRequest, "unknown_option")
		})

		t.Run("refusals", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("refuse these"))
			e := decide(member, h.ID, "maybe", "").wantErr(t, http.StatusBadRequest, "unknown_option")
			if !strings.Contains(e.Message, "maybe") {
				t.Errorf("message %q does not name the option", e.Message)
			}
			decide(member, h.ID, "APPROVE", "").wantErr(t, http.StatusBadRequest, "unknown_option")
			decide(member, h.ID, "", "").wantErr(t, http.StatusBadRequest, "invalid_option")
			decide(member, h.ID, "approve", "bad\x00comment").wantErr(t, http.StatusBadRequest, "invalid_comment")
			decide(member, h.ID, "approve", strings.Repeat("c", 2001)).wantErr(t, http.StatusBadRequest, "invalid_comment")
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", `{"option":"approve","extra":1}`).wantErr(t, http.StatusBadRequest, "unknown_field")
			// Two options in one body: which one a parser keeps is a matter of taste, so neither is taken.
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", `{"option":"deny","option":"approve"}`).wantErr(t, http.StatusBadRequest, "duplicate_key")
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", `{"option":`).wantErr(t, http.StatusBadRequest, "invalid_json")
			member.do("POST", "/v1/handoffs/"+h.ID+"/decide", "").wantErr(t, http.StatusBadRequest, "invalid_json")
			e = decide(viewer, h.ID, "approve", "").wantErr(t, http.StatusForbidden, "role_cannot_decide")
			if !strings.Contains(e.Message, "viewer") {
				t.Errorf("message %q does not name the role", e.Message)
			}
			decide(viewer, h.ID, "deny", "").wantErr(t, http.StatusForbidden, "role_cannot_decide")
			// None of that changed anything.
			if g := member.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "pending" || g.Decision != nil {
				t.Fatalf("refusals changed the handoff: %+v", g)
			}
		})

		t.Run("second decision", func(t *testing.T) {
			h := mustCreate(t, ag, basicRequest("decide twice"))
			first := decide(member, h.ID, "approve", "first").handoff(t, http.StatusOK)
			for _, c := range []*caller{member, admin} {
				for _, opt := range []string{"approve", "deny"} {
					r := decide(c, h.ID, opt, "second")
					e := r.wantErr(t, http.StatusConflict, "already_final")
					if !strings.Contains(e.Message, "Mia Member") || !strings.Contains(e.Message, "api") || !strings.Contains(e.Message, "approved") {
						t.Errorf("message %q does not name the decider, channel and outcome", e.Message)
					}
					var details struct {
						Status   string          `json:"status"`
						Decision client.Decision `json:"decision"`
					}
					if err := json.Unmarshal(e.Details, &details); err != nil {
						t.Fatalf("details %s: %v", e.Details, err)
					}
					dd := details.Decision
					if details.Status != "approved" || dd.Option != "approve" || !dd.Approved || dd.Channel != "api" || dd.Comment != "first" ||
						dd.By == nil || dd.By.ID != in.Member.ID || dd.By.Kind != "user" || !dd.DecidedAt.Equal(first.Decision.DecidedAt) {
						t.Errorf("details = %s", e.Details)
					}
				}
			}
			// Unknown options on a final handoff: it is final first.
			decide(member, h.ID, "nope", "").wantErr(t, http.StatusConflict, "already_final")
			if g := member.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Decision.Comment != "first" {
				t.Fatalf("the second decision overwrote the first: %+v", g.Decision)
			}
		})

		t.Run("concurrent", func(t *testing.T) {
			// Four deciders, 20 requests at once, half approving and half denying.
			deciders := []testserver.User{in.Admin, in.Member,
				in.AddUser(t, store.RoleMember, "Max Member"), in.AddUser(t, store.RoleAdmin, "Ann Admin")}
			callers := make([]*caller, len(deciders))
			for i, u := range deciders {
				callers[i] = cookieRaw(t, in.URL, session(t, in, in.OrgID, u.ID))
			}
			h := mustCreate(t, ag, basicRequest("race"))
			const n = 20
			results := make([]resp, n)
			var wg sync.WaitGroup
			startGun := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-startGun
					opt := []string{"approve", "deny"}[i%2]
					results[i] = decide(callers[i%len(callers)], h.ID, opt, fmt.Sprintf("request %d", i))
				}()
			}
			close(startGun)
			wg.Wait()
			winner := -1
			for i, r := range results {
				switch r.Status {
				case http.StatusOK:
					if winner >= 0 {
						t.Fatalf("two decisions succeeded: %d and %d", winner, i)
					}
					winner = i
				case http.StatusConflict:
					r.wantErr(t, http.StatusConflict, "already_final")
				default:
					t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
				}
			}
			if winner < 0 {
				t.Fatal("no decision succeeded")
			}
			won := results[winner].handoff(t, http.StatusOK)
			final := member.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK)
			wantOpt := []string{"approve", "deny"}[winner%2]
			wantBy := deciders[winner%len(deciders)].ID
			if final.Decision == nil || final.Decision.Option != wantOpt || final.Decision.By.ID != wantBy ||
				final.Decision.Comment != fmt.Sprintf("request %d", winner) || !final.Decision.DecidedAt.Equal(won.Decision.DecidedAt) {
				t.Fatalf("final decision %+v is not the winner's (request %d)", final.Decision, winner)
			}
			// Every loser was told about the winner.
			for i, r := range results {
				if i == winner {
					continue
				}
				var eb struct {
					Error struct {
						Details struct {
							Decision client.Decision `json:"decision"`
						} `json:"details"`
					} `json:"error"`
				}
				_ = json.Unmarshal(r.Body, &eb)
				if got := eb.Error.Details.Decision; got.By == nil || got.By.ID != wantBy || got.Option != wantOpt {
					t.Errorf("loser %d was told %+v", i, got)
				}
			}
		})
	})
}

// TestCancel covers withdrawing a handoff by its agent and by people.
func TestCancel(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		ag := in.Agent(t)
		agent := agentRaw(t, in)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		viewer := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Viewer.ID))

		h := mustCreate(t, ag, basicRequest("cancel me"))
		got, err := ag.Cancel(ctxT(t), h.ID, "no longer needed")
		if err != nil {
			t.Fatal(err)
		}
		dv := got.Decision
		if got.Status != "cancelled" || dv == nil || dv.Approved || dv.Option != "" || dv.Channel != "api" || dv.Comment != "no longer needed" ||
			dv.Outcome != "cancelled" || dv.By == nil || *dv.By != (client.Decider{Kind: "device", ID: in.DeviceID, Name: "test agent"}) {
			t.Fatalf("cancel = %+v / %+v", got, dv)
		}
		_, err = ag.Cancel(ctxT(t), h.ID, "again")
		wantClientErr(t, err, http.StatusConflict, "already_final")
		e := member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).wantErr(t, http.StatusConflict, "already_final")
		if !strings.Contains(e.Message, "cancelled") {
			t.Errorf("message %q", e.Message)
		}
		if g := member.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "cancelled" {
			t.Fatalf("decide after cancel changed it: %q", g.Status)
		}

		// Without a body.
		h2 := mustCreate(t, ag, basicRequest("cancel without a body"))
		if g := agent.do("POST", "/v1/handoffs/"+h2.ID+"/cancel", nil).handoff(t, http.StatusOK); g.Status != "cancelled" || g.Decision.Comment != "" {
			t.Fatalf("bodiless cancel: %+v", g)
		}
		// Bad bodies and reasons.
		h3 := mustCreate(t, ag, basicRequest("cancel refusals"))
		agent.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", `{"reason":"x","why":1}`).wantErr(t, http.StatusBadRequest, "unknown_field")
		agent.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", `{"reason":`).wantErr(t, http.StatusBadRequest, "invalid_json")
		agent.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", map[string]string{"reason": "a\x07b"}).wantErr(t, http.StatusBadRequest, "invalid_reason")

		// People: a viewer may not, a member may.
		viewer.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", map[string]string{"reason": "viewer"}).wantErr(t, http.StatusForbidden, "role_cannot_decide")
		g := member.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", map[string]string{"reason": "not today"}).handoff(t, http.StatusOK)
		if g.Status != "cancelled" || g.Decision.By == nil || *g.Decision.By != (client.Decider{Kind: "user", ID: in.Member.ID, Name: "Mia Member"}) || g.Decision.Comment != "not today" {
			t.Fatalf("member cancel: %+v", g.Decision)
		}
		e = member.do("POST", "/v1/handoffs/"+h3.ID+"/cancel", map[string]string{}).wantErr(t, http.StatusConflict, "already_final")
		if !strings.Contains(e.Message, "Mia Member") {
			t.Errorf("message %q does not name who cancelled", e.Message)
		}

		// A decided handoff cannot be cancelled.
		h4 := mustCreate(t, ag, basicRequest("decided first"))
		member.do("POST", "/v1/handoffs/"+h4.ID+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
		_, err = ag.Cancel(ctxT(t), h4.ID, "too late")
		wantClientErr(t, err, http.StatusConflict, "already_final")
	})
}

// TestList covers filters, order and limits.
func TestList(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		ag := in.Agent(t)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		var created []string
		for i := range 5 {
			created = append(created, mustCreate(t, ag, basicRequest(fmt.Sprintf("item %d", i))).ID)
		}
		member.do("POST", "/v1/handoffs/"+created[1]+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
		member.do("POST", "/v1/handoffs/"+created[3]+"/decide", map[string]string{"option": "deny"}).handoff(t, http.StatusOK)
		agentRaw(t, in).do("POST", "/v1/handoffs/"+created[4]+"/cancel", nil).handoff(t, http.StatusOK)
		rev := func(ids ...string) []string { ids = slices.Clone(ids); slices.Reverse(ids); return ids }

		cases := []struct {
			query string
			want  []string
		}{
			{"", rev(created...)},
			{"?status=pending", rev(created[0], created[2])},
			{"?status=approved", []string{created[1]}},
			{"?status=denied", []string{created[3]}},
			{"?status=cancelled", []string{created[4]}},
			{"?status=expired", []string{}},
			{"?limit=2", rev(created[3], created[4])},
			{"?status=pending&limit=1", []string{created[2]}},
			{"?limit=500", rev(created...)},
		}
		for _, c := range []*caller{member, agentRaw(t, in)} {
			for _, tc := range cases {
				hs := c.do("GET", "/v1/handoffs"+tc.query, nil).list(t)
				if ids := listIDs(hs); !slices.Equal(ids, tc.want) {
					t.Errorf("%s: got %v, want %v", tc.query, ids, tc.want)
				}
				for i := 1; i < len(hs); i++ {
					if hs[i].CreatedAt.After(hs[i-1].CreatedAt) {
						t.Errorf("%s: not newest first", tc.query)
					}
				}
			}
		}
		// The client's List speaks the same API.
		hs, err := person(t, in, in.Viewer).List(ctxT(t), "pending", 0)
		if err != nil || !slices.Equal(listIDs(hs), rev(created[0], created[2])) {
			t.Errorf("client list: %v %v", listIDs(hs), err)
		}
		for _, q := range []string{"?status=bogus", "?status=PENDING", "?status=pending%00"} {
			member.do("GET", "/v1/handoffs"+q, nil).wantErr(t, http.StatusBadRequest, "invalid_status")
		}
		for _, q := range []string{"?limit=0", "?limit=-1", "?limit=501", "?limit=ten", "?limit=1.5"} {
			member.do("GET", "/v1/handoffs"+q, nil).wantErr(t, http.StatusBadRequest, "invalid_limit")
		}
	})
}

// TestListDeviceLimit: an agent's list is limited after keeping only its own handoffs (the filter is in
// the query), so a device whose handoffs are older than other devices' newest still sees them.
func TestListDeviceLimit(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		mine := mustCreate(t, in.Agent(t), basicRequest("mine, older"))
		dev2 := secondDevice(t, in, in.OrgID)
		other := bearer(t, in.URL, dev2.Token)
		for i := range 3 {
			other.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": fmt.Sprint("theirs ", i)}).handoff(t, http.StatusCreated)
		}
		for _, q := range []string{"?limit=1", "?limit=3", "?status=pending&limit=2"} {
			if ids := listIDs(agentRaw(t, in).do("GET", "/v1/handoffs"+q, nil).list(t)); !slices.Equal(ids, []string{mine.ID}) {
				t.Errorf("device list%s = %v, want its own handoff %s", q, ids, mine.ID)
			}
		}
	})
}
