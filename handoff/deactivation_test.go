package handoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

// TestDeactivationIsSoftDelete (issue 17): deactivating a member ends their sessions at once, refuses
// their password, and stops their chat decision links; their row stays (inactive, so no longer an
// active member of the team list) and the audit log still verifies and names them. Reactivated, they
// sign in and decide again.
func TestDeactivationIsSoftDelete(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, d)
			o := newRetentionOrg(t, e, "Soft", 0)
			sv := org.Service{Store: e.store, Audit: e.audit, Now: e.clock.now}
			admin := audit.Actor{Kind: "user", ID: o.adminUserID, Role: "admin"}
			const email, pw = "dee@soft.test", "a long enough passphrase"
			dee, err := sv.CreateUser(ctx, admin, o.id, org.NewUser{Email: email, Name: "Dee", Role: store.RoleMember, Password: pw})
			if err != nil {
				t.Fatal(err)
			}
			sess := session.New(session.Deps{Store: e.store, Coord: coord.NewMemory(nil), Logger: testdb.Discard, Clock: e.clock.now, Audit: e.audit}, session.Config{})
			login := func() error { _, err := sess.Login(ctx, email, pw, "192.0.2.1"); return err }
			if err := login(); err != nil {
				t.Fatalf("login before: %v", err)
			}
			h := o.create(t, e, "echo hi")
			// A decision link as a chat button carries it: a single-use token for Dee on Slack.
			link := func() string {
				t.Helper()
				tok, err := auth.NewToken(auth.DecisionTokenPrefix)
				if err != nil {
					t.Fatal(err)
				}
				at := e.clock.now()
				if err := e.store.InOrg(ctx, o.id, func(tx store.OrgTx) error {
					return tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tok.Hash, HandoffID: h.ID, UserID: dee.UserID,
						Channel: "slack", CreatedAt: at, ExpiresAt: at.Add(time.Hour)})
				}); err != nil {
					t.Fatal(err)
				}
				return tok.Plain
			}
			open := link()
			row := func() (store.User, []store.Session) {
				t.Helper()
				var u store.User
				var ss []store.Session
				if err := e.store.InOrg(ctx, o.id, func(tx store.OrgTx) (err error) {
					if u, err = tx.UserByID(ctx, dee.UserID); err != nil {
						return err
					}
					ss, err = tx.UserSessions(ctx, dee.UserID)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return u, ss
			}
			activeMembers := func() (n int, listed bool) {
				t.Helper()
				ms, err := sv.Members(ctx, o.id)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range ms {
					if m.Active {
						n++
					}
					listed = listed || m.ID == dee.UserID
				}
				return n, listed
			}
			if _, ss := row(); len(ss) != 1 {
				t.Fatalf("%d sessions before, want 1", len(ss))
			}
			seats, _ := activeMembers()

			if err := sv.Deactivate(ctx, admin, o.id, dee.UserID); err != nil {
				t.Fatal(err)
			}
			u, ss := row()
			if len(ss) != 0 {
				t.Errorf("deactivation left %d sessions", len(ss))
			}
			if u.Active || u.Email != email || u.Name != "Dee" {
				t.Errorf("the row after deactivation: %+v (kept, inactive)", u)
			}
			if n, listed := activeMembers(); n != seats-1 || !listed {
				t.Errorf("active members %d (was %d), Dee listed %v: the seat is freed, the row kept", n, seats, listed)
			}
			if err := login(); code(err) != "invalid_credentials" {
				t.Errorf("login while deactivated: %v", err)
			}
			if _, err := e.svc.DecideAnswer(ctx, handoff.Answer{Token: open, Option: "deny", Channel: "slack"}); code(err) != "role_cannot_decide" {
				t.Errorf("decision link while deactivated: %v", err)
			}
			if got := o.get(t, e, h.ID); got.Status != store.StatusPending {
				t.Fatalf("a deactivated member's link decided: %s", got.Status)
			}
			checkMemberLeaf(t, e, o.id, audit.MemberOff, dee.UserID)

			if err := sv.Reactivate(ctx, admin, o.id, dee.UserID); err != nil {
				t.Fatal(err)
			}
			if err := login(); err != nil {
				t.Errorf("login after reactivation: %v", err)
			}
			got, err := e.svc.DecideAnswer(ctx, handoff.Answer{Token: link(), Option: "deny", Channel: "slack"})
			if err != nil || got.Status != store.StatusDenied || got.Decision == nil || got.Decision.ByID != dee.UserID {
				t.Fatalf("decision after reactivation: %+v, %v", got, err)
			}
			checkMemberLeaf(t, e, o.id, audit.MemberReactivated, dee.UserID)
		})
	}
}

// checkMemberLeaf verifies the org's whole log (against its records too) and finds a leaf of typ
// naming the person.
func checkMemberLeaf(t *testing.T, e env, orgID string, typ audit.EventType, userID string) {
	t.Helper()
	for _, ev := range loggedEvents(t, e, orgID) {
		if ev.Type == typ && ev.Subject == (audit.Subject{Kind: "user", ID: userID}) {
			return
		}
	}
	t.Errorf("no %s leaf names %s", typ, userID)
}
