package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// TestTeamRoutesByRole walks every team route with every kind of caller: admin, member, viewer, a
// deactivated person, the admin of another organization, an agent and nobody.
func TestTeamRoutesByRole(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		other := newOtherOrg(t, in)
		gone := addUser(t, in, in.OrgID, store.RoleMember, "Gone Member")
		goneSession := session(t, in, in.OrgID, gone.ID)
		admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
		if r := admin.do("POST", "/v1/team/"+gone.ID+"/deactivate", map[string]any{}); r.Status != http.StatusNoContent {
			t.Fatalf("deactivate: %d %s", r.Status, r.Body)
		}
		target := addUser(t, in, in.OrgID, store.RoleViewer, "Target")

		callers := map[string]*caller{
			"admin":       admin,
			"member":      cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID)),
			"viewer":      cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Viewer.ID)),
			"deactivated": cookieRaw(t, in.URL, goneSession),
			"other_org":   cookieRaw(t, in.URL, other.Session),
			"agent":       agentRaw(t, in),
			"anonymous":   anon(t, in.URL),
		}
		type want struct {
			status int
			code   string
		}
		ok := func(s int) want { return want{s, ""} }
		unauth := want{401, "session_expired"}
		people := want{403, "people_only"}
		adminOnly := want{403, "admin_only"}
		notFound := want{404, "user_not_found"}
		noone := want{401, "unauthenticated"}
		for _, c := range []struct {
			method, path string
			body         any
			want         map[string]want
		}{
			{"GET", "/v1/team", nil, map[string]want{"admin": ok(200), "member": ok(200), "viewer": ok(200),
				"deactivated": unauth, "other_org": ok(200), "agent": people, "anonymous": noone}},
			{"GET", "/v1/settings", nil, map[string]want{"admin": ok(200), "member": ok(200), "viewer": ok(200),
				"deactivated": unauth, "other_org": ok(200), "agent": people, "anonymous": noone}},
			{"POST", "/v1/team/invites", map[string]any{"email": "x@acme.test", "role": "viewer"}, map[string]want{"admin": ok(201),
				"member": adminOnly, "viewer": adminOnly, "deactivated": unauth, "agent": people, "anonymous": noone}},
			{"POST", "/v1/team/" + target.ID + "/role", map[string]any{"role": "member"}, map[string]want{"admin": ok(204),
				"member": adminOnly, "viewer": adminOnly, "deactivated": unauth, "other_org": notFound, "agent": people, "anonymous": noone}},
			{"POST", "/v1/team/" + target.ID + "/deactivate", map[string]any{}, map[string]want{"member": adminOnly, "viewer": adminOnly,
				"deactivated": unauth, "other_org": notFound, "agent": people, "anonymous": noone, "admin": ok(204)}},
			{"POST", "/v1/team/" + target.ID + "/reactivate", map[string]any{}, map[string]want{"member": adminOnly, "viewer": adminOnly,
				"deactivated": unauth, "other_org": notFound, "agent": people, "anonymous": noone, "admin": ok(204)}},
			{"PUT", "/v1/settings", map[string]any{"stepup_risks": []string{"critical"}, "payload_retention_days": 30}, map[string]want{
				"admin": ok(200), "member": adminOnly, "viewer": adminOnly, "deactivated": unauth, "agent": people, "anonymous": noone}},
			// An unknown id answers exactly as another org's person does.
			{"POST", "/v1/team/00000000-0000-0000-0000-000000000001/deactivate", map[string]any{}, map[string]want{"admin": notFound}},
			{"POST", "/v1/team/not-a-uuid/role", map[string]any{"role": "member"}, map[string]want{"admin": notFound}},
		} {
			// The admin goes last so a successful change does not alter what the others are refused.
			for _, who := range []string{"member", "viewer", "deactivated", "other_org", "agent", "anonymous", "admin"} {
				w, listed := c.want[who]
				if !listed {
					continue
				}
				r := callers[who].do(c.method, c.path, c.body)
				if w.code == "" {
					if r.Status != w.status {
						t.Errorf("%s %s as %s: %d %s; want %d", c.method, c.path, who, r.Status, r.Body, w.status)
					}
					continue
				}
				if r.Status != w.status || !strings.Contains(string(r.Body), `"code":"`+w.code+`"`) {
					t.Errorf("%s %s as %s: %d %s; want %d %s", c.method, c.path, who, r.Status, r.Body, w.status, w.code)
				}
			}
		}
		// The other org's admin sees only their own org.
		var tv struct {
			Members []struct {
				ID string `json:"id"`
			} `json:"members"`
		}
		if err := json.Unmarshal(callers["other_org"].do("GET", "/v1/team", nil).Body, &tv); err != nil || len(tv.Members) != 1 || tv.Members[0].ID != other.AdminID {
			t.Errorf("other org's team: %+v %v", tv, err)
		}
		// The settings change stuck; the role change ended the target's sessions.
		r := admin.do("GET", "/v1/settings", nil)
		if !strings.Contains(string(r.Body), `"stepup_risks":["critical"]`) || !strings.Contains(string(r.Body), `"payload_retention_days":30`) {
			t.Errorf("settings: %s", r.Body)
		}
		if r := admin.do("PUT", "/v1/settings", map[string]any{"stepup_risks": []string{"extreme"}, "payload_retention_days": -1}); r.Status != 400 {
			t.Errorf("bad settings: %d %s", r.Status, r.Body)
		}
	})
}

// TestDeactivatedPersonIsLockedOut: after deactivation the person's sessions are gone, a new session
// row is refused, the password no longer signs in, and a chat decision link they hold stops working.
func TestDeactivatedPersonIsLockedOut(t *testing.T) {
	t.Parallel()
	in := start(t, "sqlite", nil)
	ctx := context.Background()
	victim := addUser(t, in, in.OrgID, store.RoleMember, "Soon Gone")
	live := cookieRaw(t, in.URL, session(t, in, in.OrgID, victim.ID))
	if r := live.do("GET", "/v1/auth/me", nil); r.Status != 200 {
		t.Fatalf("before: %d", r.Status)
	}
	h := mustCreate(t, in.Agent(t), basicRequest("deploy"))
	tok, err := auth.NewToken(auth.DecisionTokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
		return tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, UserID: victim.ID, Channel: "slack",
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	if r := admin.do("POST", "/v1/team/"+victim.ID+"/deactivate", map[string]any{}); r.Status != http.StatusNoContent {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	live.do("GET", "/v1/auth/me", nil).wantErr(t, 401, "session_expired")
	cookieRaw(t, in.URL, session(t, in, in.OrgID, victim.ID)).do("GET", "/v1/auth/me", nil).wantErr(t, 401, "session_expired")
	anon(t, in.URL).do("POST", "/v1/auth/login", map[string]string{"email": victim.Email, "password": testserver.Password}).
		wantErr(t, 401, "invalid_credentials")
	if _, err := in.App.Handoffs.DecideAnswer(ctx, handoff.Answer{Token: tok.Plain, Option: "approve", Channel: "slack"}); err == nil || !strings.Contains(err.Error(), "role_cannot_decide") {
		t.Fatalf("decision link of a deactivated person: %v", err)
	}
	// Admins cannot deactivate themselves.
	admin.do("POST", "/v1/team/"+in.Admin.ID+"/deactivate", map[string]any{}).wantErr(t, 409, "cannot_deactivate_self")
	// Reactivated, the password works again.
	if r := admin.do("POST", "/v1/team/"+victim.ID+"/reactivate", map[string]any{}); r.Status != http.StatusNoContent {
		t.Fatalf("reactivate: %d %s", r.Status, r.Body)
	}
	if r := anon(t, in.URL).do("POST", "/v1/auth/login", map[string]string{"email": victim.Email, "password": testserver.Password}); r.Status != 200 {
		t.Fatalf("login after reactivation: %d %s", r.Status, r.Body)
	}
}

// TestInviteAcceptAndForgotOverHTTP: without SMTP the admin gets a link to copy; following it creates
// the person once; forgot answers 202 for anyone; a bad reset code is refused.
func TestInviteAcceptAndForgotOverHTTP(t *testing.T) {
	t.Parallel()
	in := start(t, "sqlite", nil)
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	r := admin.do("POST", "/v1/team/invites", map[string]any{"email": "Newbie@Acme.test", "role": "member"})
	var inv struct {
		Link      string    `json:"link"`
		ExpiresAt time.Time `json:"expires_at"`
		Mailed    bool      `json:"mailed"`
	}
	if r.Status != 201 || json.Unmarshal(r.Body, &inv) != nil || inv.Mailed || !strings.HasPrefix(inv.Link, in.URL+"/console/invite/ony_inv_") {
		t.Fatalf("invite: %d %s", r.Status, r.Body)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("invite answer is cacheable: %q", r.Header.Get("Cache-Control"))
	}
	code := strings.TrimPrefix(inv.Link, in.URL+"/console/invite/")
	nobody := anon(t, in.URL)
	nobody.do("POST", "/v1/invites/accept", map[string]string{"code": code, "name": "New", "password": "short"}).wantErr(t, 400, "invalid_user")
	nobody.do("POST", "/v1/invites/accept", map[string]string{"code": code, "name": "New", "password": "a perfectly long passphrase"},
		"Content-Type", "text/plain").wantErr(t, 403, "csrf")
	r = nobody.do("POST", "/v1/invites/accept", map[string]string{"code": code, "name": "New", "password": "a perfectly long passphrase"})
	if r.Status != 201 || !strings.Contains(string(r.Body), `"email":"newbie@acme.test"`) || !strings.Contains(string(r.Body), `"role":"member"`) {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}
	nobody.do("POST", "/v1/invites/accept", map[string]string{"code": code, "name": "New", "password": "a perfectly long passphrase"}).
		wantErr(t, 404, "invite_not_found")
	for _, e := range []string{"newbie@acme.test", "nobody@acme.test", "garbage"} {
		if r := nobody.do("POST", "/v1/auth/forgot", map[string]string{"email": e}); r.Status != 202 {
			t.Errorf("forgot %s: %d %s", e, r.Status, r.Body)
		}
	}
	nobody.do("POST", "/v1/auth/reset", map[string]string{"code": "ony_rst_" + strings.Repeat("A", 43), "password": "a perfectly long passphrase"}).
		wantErr(t, 404, "reset_not_found")
}
