package org_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/mail"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

// outbox is a mail.Sender that keeps what it was given.
type outbox struct {
	mu  sync.Mutex
	got []mail.Message
}

func (o *outbox) Send(_ context.Context, m mail.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, m)
	return nil
}

func (o *outbox) all() []mail.Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]mail.Message(nil), o.got...)
}

var linkRE = regexp.MustCompile(`https://ony\.test/console/(invite|reset)/(ony_(?:inv|rst)_[A-Za-z0-9_-]{43})`)

type team struct {
	sv    org.Service
	orgID string
	admin audit.Actor
}

func newTeam(t *testing.T, dialect string, box *outbox) team {
	sv := newService(t, dialect)
	sv.PublicURL = "https://ony.test/"
	if box != nil {
		sv.Mail = box
	}
	o, err := sv.Create(ctx, audit.Actor{Kind: "system", ID: "test"}, org.NewOrg{Name: "Acme", AdminEmail: "boss@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	return team{sv: sv, orgID: o.OrgID, admin: audit.Actor{Kind: "user", ID: o.AdminID, Role: "admin"}}
}

// join invites email with role and accepts it, returning the new person as an actor.
func (tm team) join(t *testing.T, email string, role store.Role) audit.Actor {
	t.Helper()
	inv, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, email, role)
	if err != nil {
		t.Fatal(err)
	}
	u, err := tm.sv.AcceptInvite(ctx, codeOf(t, inv.Link), "", "a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	return audit.Actor{Kind: "user", ID: u.ID, Role: string(u.Role)}
}

func codeOf(t *testing.T, link string) string {
	t.Helper()
	m := linkRE.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no code link in %q", link)
	}
	return m[2]
}

func sessions(t *testing.T, sv org.Service, orgID, userID string, n int) {
	t.Helper()
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		for range n {
			tok, _ := auth.NewToken(auth.SessionIDPrefix)
			if err := tx.CreateSession(ctx, store.Session{IDHash: tok.Hash, UserID: userID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func countSessions(t *testing.T, sv org.Service, orgID, userID string) int {
	t.Helper()
	var n int
	// DeleteUserSessions with a rollback counts without changing anything.
	_ = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) (err error) {
		n, err = tx.DeleteUserSessions(ctx, userID, nil)
		if err == nil {
			err = context.Canceled
		}
		return err
	})
	return n
}

func TestInviteAndAccept(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tm := newTeam(t, d, nil)
			inv, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, " New@Acme.test ", store.RoleViewer)
			if err != nil {
				t.Fatal(err)
			}
			if inv.Mailed || !strings.HasPrefix(inv.Link, "https://ony.test/console/invite/ony_inv_") || inv.ExpiresAt.Sub(time.Now()) < 6*24*time.Hour {
				t.Fatalf("invitation %+v", inv)
			}
			c := codeOf(t, inv.Link)
			info, err := tm.sv.InviteInfo(ctx, c)
			if err != nil || info.OrgName != "Acme" || info.Email != "new@acme.test" || info.Role != store.RoleViewer {
				t.Fatalf("InviteInfo = %+v, %v", info, err)
			}
			for _, bad := range []string{"", "garbage", "ony_inv_" + strings.Repeat("A", 43), strings.Replace(c, "ony_inv_", "ony_rst_", 1)} {
				if _, err := tm.sv.InviteInfo(ctx, bad); code(err) != "invite_not_found" {
					t.Errorf("InviteInfo(%q): %v", bad, err)
				}
			}
			if _, err := tm.sv.AcceptInvite(ctx, c, "New", "short"); code(err) != "invalid_user" {
				t.Fatalf("weak password: %v", err)
			}
			// Two accepts of one link at once: exactly one person is created.
			var wg sync.WaitGroup
			var mu sync.Mutex
			var ok, refused int
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := tm.sv.AcceptInvite(ctx, c, "New Person", "a long enough passphrase")
					mu.Lock()
					defer mu.Unlock()
					switch code(err) {
					case "":
						ok++
					case "invite_not_found", "email_taken":
						refused++
					default:
						t.Errorf("accept: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok != 1 || refused != 1 {
				t.Fatalf("concurrent accepts: %d ok, %d refused", ok, refused)
			}
			ms, err := tm.sv.Members(ctx, tm.orgID)
			if err != nil || len(ms) != 2 || ms[1].Email != "new@acme.test" || ms[1].Role != store.RoleViewer || ms[1].Name != "New Person" {
				t.Fatalf("members %+v, %v", ms, err)
			}
			if _, err := tm.sv.InviteInfo(ctx, c); code(err) != "invite_not_found" {
				t.Errorf("used invite still open: %v", err)
			}
			if _, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, "new@acme.test", ""); code(err) != "email_taken" {
				t.Errorf("invite of a member: %v", err)
			}
			viewer := audit.Actor{Kind: "user", ID: ms[1].ID, Role: "viewer"}
			if _, err := tm.sv.Invite(ctx, viewer, tm.orgID, "x@acme.test", ""); code(err) != "admin_only" {
				t.Errorf("viewer invited: %v", err)
			}
			// A non-admin cannot probe which emails have accounts.
			if _, err := tm.sv.Invite(ctx, viewer, tm.orgID, "boss@acme.test", ""); code(err) != "admin_only" {
				t.Errorf("viewer probing a taken email: %v", err)
			}
			// A forged role in the actor does not help: the service reads the person's role itself.
			if _, err := tm.sv.Invite(ctx, audit.Actor{Kind: "user", ID: ms[1].ID, Role: "admin"}, tm.orgID, "x@acme.test", ""); code(err) != "admin_only" {
				t.Errorf("forged admin invited: %v", err)
			}
			evs := strings.Join(events(t, tm.sv, tm.orgID), " ")
			if !strings.Contains(evs, "invite.created:invite") || !strings.Contains(evs, "member.joined:user") {
				t.Errorf("events %s", evs)
			}
			assertNoSecretsInLog(t, tm.sv, tm.orgID, c)
		})
	}
}

func assertNoSecretsInLog(t *testing.T, sv org.Service, orgID string, secrets ...string) {
	t.Helper()
	if _, err := sv.Audit.Sequence(ctx, sv.Store, orgID); err != nil {
		t.Fatal(err)
	}
	_ = sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 1000)
		for _, l := range ls {
			for _, s := range append(secrets, "ony_inv_", "ony_rst_", "console/", "passphrase") {
				if strings.Contains(string(l.Data), s) {
					t.Errorf("audit leaf holds %q: %s", s, l.Data)
				}
			}
		}
		return err
	})
}

func TestInviteSupersedesAndMails(t *testing.T) {
	t.Parallel()
	box := &outbox{}
	tm := newTeam(t, "sqlite", box)
	first, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, "late@acme.test", "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, "late@acme.test", store.RoleAdmin)
	if err != nil || !second.Mailed {
		t.Fatal(second, err)
	}
	if _, err := tm.sv.AcceptInvite(ctx, codeOf(t, first.Link), "", "a long enough passphrase"); code(err) != "invite_not_found" {
		t.Fatalf("superseded invite: %v", err)
	}
	got := box.all()
	if len(got) != 2 || got[1].To != "late@acme.test" || !strings.Contains(got[1].Text, second.Link) || !strings.Contains(got[1].Subject, "Acme") {
		t.Fatalf("mail %+v", got)
	}
	u, err := tm.sv.AcceptInvite(ctx, codeOf(t, second.Link), "", "a long enough passphrase")
	if err != nil || u.Role != store.RoleAdmin || u.Name != "late" {
		t.Fatalf("accept = %+v, %v", u, err)
	}
	// The new member is welcomed with where to sign in, and nothing secret.
	got = box.all()
	if len(got) != 3 {
		t.Fatalf("%d mails after joining, want 3 (two invites, one welcome)", len(got))
	}
	w := got[2]
	if w.To != "late@acme.test" || !strings.Contains(w.Subject, "Welcome to Acme") ||
		!strings.Contains(w.Text, "https://ony.test/console/") || strings.Contains(w.Text, "passphrase") || linkRE.MatchString(w.Text) {
		t.Fatalf("welcome mail %+v", w)
	}
}

func TestJoinInvited(t *testing.T) {
	t.Parallel()
	tm := newTeam(t, "sqlite", nil)
	if _, ok, err := tm.sv.JoinInvited(ctx, "sso@acme.test", "SSO"); ok || err != nil {
		t.Fatalf("uninvited joined: %v %v", ok, err)
	}
	if _, err := tm.sv.Invite(ctx, tm.admin, tm.orgID, "sso@acme.test", store.RoleMember); err != nil {
		t.Fatal(err)
	}
	u, ok, err := tm.sv.JoinInvited(ctx, "SSO@acme.test", "Sso Person")
	if err != nil || !ok || u.OrgID != tm.orgID || u.Role != store.RoleMember || u.Name != "Sso Person" {
		t.Fatalf("JoinInvited = %+v, %v, %v", u, ok, err)
	}
	if _, ok, err := tm.sv.JoinInvited(ctx, "sso@acme.test", "again"); ok || err != nil {
		t.Fatalf("second join: %v %v", ok, err)
	}
}

func TestRolesAndDeactivation(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tm := newTeam(t, d, nil)
			ana := tm.join(t, "ana@acme.test", store.RoleMember)
			// The only admin can neither demote nor deactivate themselves.
			if err := tm.sv.SetRole(ctx, tm.admin, tm.orgID, tm.admin.ID, store.RoleMember); code(err) != "last_admin" {
				t.Fatalf("last admin demoted: %v", err)
			}
			if err := tm.sv.Deactivate(ctx, tm.admin, tm.orgID, tm.admin.ID); code(err) != "cannot_deactivate_self" {
				t.Fatalf("self deactivated: %v", err)
			}
			if err := tm.sv.SetRole(ctx, ana, tm.orgID, ana.ID, store.RoleAdmin); code(err) != "admin_only" {
				t.Fatalf("member promoted themselves: %v", err)
			}
			for _, id := range []string{"nope", "00000000-0000-0000-0000-000000000001"} {
				if err := tm.sv.SetRole(ctx, tm.admin, tm.orgID, id, store.RoleViewer); code(err) != "user_not_found" {
					t.Errorf("SetRole(%s): %v", id, err)
				}
			}
			if err := tm.sv.SetRole(ctx, tm.admin, tm.orgID, ana.ID, "owner"); code(err) != "invalid_user" {
				t.Errorf("bad role: %v", err)
			}
			sessions(t, tm.sv, tm.orgID, ana.ID, 2)
			if err := tm.sv.SetRole(ctx, tm.admin, tm.orgID, ana.ID, store.RoleAdmin); err != nil {
				t.Fatal(err)
			}
			if n := countSessions(t, tm.sv, tm.orgID, ana.ID); n != 0 {
				t.Errorf("role change left %d sessions", n)
			}
			ana.Role = "admin"
			// Now two admins: one may demote the other, but not then themselves.
			if err := tm.sv.SetRole(ctx, ana, tm.orgID, tm.admin.ID, store.RoleViewer); err != nil {
				t.Fatal(err)
			}
			if err := tm.sv.SetRole(ctx, ana, tm.orgID, ana.ID, store.RoleMember); code(err) != "last_admin" {
				t.Fatalf("left without admin: %v", err)
			}
			// The demoted former admin can no longer act as one, whatever their session claimed.
			if err := tm.sv.Deactivate(ctx, tm.admin, tm.orgID, ana.ID); code(err) != "admin_only" {
				t.Fatalf("demoted admin deactivated someone: %v", err)
			}
			boss := audit.Actor{Kind: "user", ID: tm.admin.ID, Role: "viewer"}
			sessions(t, tm.sv, tm.orgID, boss.ID, 3)
			if err := tm.sv.Deactivate(ctx, ana, tm.orgID, boss.ID); err != nil {
				t.Fatal(err)
			}
			if n := countSessions(t, tm.sv, tm.orgID, boss.ID); n != 0 {
				t.Errorf("deactivation left %d sessions", n)
			}
			ms, _ := tm.sv.Members(ctx, tm.orgID)
			for _, m := range ms {
				if m.ID == boss.ID && m.Active {
					t.Error("still active")
				}
			}
			if err := tm.sv.Reactivate(ctx, ana, tm.orgID, boss.ID); err != nil {
				t.Fatal(err)
			}
			ms, _ = tm.sv.Members(ctx, tm.orgID)
			for _, m := range ms {
				if m.ID == boss.ID && !m.Active {
					t.Error("not reactivated")
				}
			}
			evs := strings.Join(events(t, tm.sv, tm.orgID), " ")
			for _, want := range []string{"member.role_changed:user", "member.deactivated:user", "member.reactivated:user"} {
				if !strings.Contains(evs, want) {
					t.Errorf("no %s in %s", want, evs)
				}
			}
		})
	}
}

// TestLastAdminRace: two admins demote each other at once; one change must be refused.
func TestLastAdminRace(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tm := newTeam(t, d, nil)
			other := tm.join(t, "two@acme.test", store.RoleAdmin)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, pair := range [][2]audit.Actor{{tm.admin, other}, {other, tm.admin}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = tm.sv.Deactivate(ctx, pair[0], tm.orgID, pair[1].ID)
				}()
			}
			wg.Wait()
			ms, _ := tm.sv.Members(ctx, tm.orgID)
			active := 0
			for _, m := range ms {
				if m.Active && m.Role == store.RoleAdmin {
					active++
				}
			}
			if active != 1 {
				t.Fatalf("%d active admins after the race (errors %v)", active, errs)
			}
		})
	}
}

// TestDeactivateRacesProfileEdit: a person edits their profile while an admin deactivates them; the
// edit must not write back the active flag it read before the deactivation.
func TestDeactivateRacesProfileEdit(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			tm := newTeam(t, d, nil)
			for i := range 10 {
				who := tm.join(t, fmt.Sprintf("p%d@acme.test", i), store.RoleMember)
				name := "Renamed"
				var wg sync.WaitGroup
				var offErr, editErr error
				wg.Add(2)
				go func() { defer wg.Done(); offErr = tm.sv.Deactivate(ctx, tm.admin, tm.orgID, who.ID) }()
				go func() {
					defer wg.Done()
					_, editErr = tm.sv.UpdateOwnContact(ctx, tm.orgID, who.ID, org.Contact{Name: &name})
				}()
				wg.Wait()
				if offErr != nil || editErr != nil {
					t.Fatal(offErr, editErr)
				}
				ms, _ := tm.sv.Members(ctx, tm.orgID)
				for _, m := range ms {
					if m.ID == who.ID && (m.Active || m.Name != name) {
						t.Fatalf("round %d: active %v, name %q after a deactivation raced an edit", i, m.Active, m.Name)
					}
				}
			}
		})
	}
}

func TestForgotAndReset(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			box := &outbox{}
			tm := newTeam(t, d, box)
			for _, e := range []string{"nobody@acme.test", "not an email", ""} {
				if err := tm.sv.ForgotPassword(ctx, e); err != nil {
					t.Fatalf("ForgotPassword(%q): %v", e, err)
				}
			}
			if n := len(box.all()); n != 0 {
				t.Fatalf("%d mails for unknown addresses", n)
			}
			if err := tm.sv.ForgotPassword(ctx, "Boss@acme.test"); err != nil {
				t.Fatal(err)
			}
			if err := tm.sv.ForgotPassword(ctx, "boss@acme.test"); err != nil {
				t.Fatal(err)
			}
			got := box.all()
			if len(got) != 2 || got[1].To != "boss@acme.test" {
				t.Fatalf("mails %+v", got)
			}
			old, fresh := codeOf(t, got[0].Text), codeOf(t, got[1].Text)
			if err := tm.sv.ResetWithCode(ctx, old, "another long passphrase"); code(err) != "reset_not_found" {
				t.Fatalf("superseded reset: %v", err)
			}
			if err := tm.sv.ResetWithCode(ctx, fresh, "short"); code(err) != "invalid_user" {
				t.Fatalf("weak: %v", err)
			}
			sessions(t, tm.sv, tm.orgID, tm.admin.ID, 2)
			if err := tm.sv.ResetWithCode(ctx, fresh, "another long passphrase"); err != nil {
				t.Fatal(err)
			}
			if n := countSessions(t, tm.sv, tm.orgID, tm.admin.ID); n != 0 {
				t.Errorf("reset left %d sessions", n)
			}
			if err := tm.sv.ResetWithCode(ctx, fresh, "yet another passphrase"); code(err) != "reset_not_found" {
				t.Fatalf("reused reset: %v", err)
			}
			var u store.User
			_ = tm.sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { u, err = tx.UserByEmail(ctx, "boss@acme.test"); return err })
			if ok, _ := auth.VerifyPassword(u.PasswordHash, "another long passphrase"); !ok {
				t.Error("password not changed")
			}
			if _, err := tm.sv.InviteInfo(ctx, fresh); code(err) != "invite_not_found" {
				t.Errorf("a reset code worked as an invite: %v", err)
			}
			assertNoSecretsInLog(t, tm.sv, tm.orgID, old, fresh)
		})
	}
}

// TestForgotIsThrottled: past the limit per email, requests are dropped silently (same answer).
func TestForgotIsThrottled(t *testing.T) {
	t.Parallel()
	box := &outbox{}
	tm := newTeam(t, "sqlite", box)
	tm.sv.Coord = coord.NewMemory(nil)
	for range 5 {
		if err := tm.sv.ForgotPassword(ctx, "boss@acme.test"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(box.all()); n != 3 {
		t.Fatalf("%d reset mails for 5 requests; want 3", n)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	tm := newTeam(t, "sqlite", nil)
	s, err := tm.sv.Settings(ctx, tm.orgID)
	if err != nil || strings.Join(s.StepUpRisks, ",") != "high,critical" || s.PayloadRetentionDays != 0 {
		t.Fatalf("defaults %+v %v", s, err)
	}
	err = tm.sv.UpdateSettings(ctx, tm.admin, tm.orgID, org.Settings{StepUpRisks: []string{"severe", "high"}, PayloadRetentionDays: 4000})
	if ps := org.Problems(err); len(ps) != 2 {
		t.Fatalf("want both mistakes, got %v", err)
	}
	if err := tm.sv.UpdateSettings(ctx, tm.admin, tm.orgID, org.Settings{StepUpRisks: []string{"critical", "low", "critical"}, PayloadRetentionDays: 30}); err != nil {
		t.Fatal(err)
	}
	s, _ = tm.sv.Settings(ctx, tm.orgID)
	if strings.Join(s.StepUpRisks, ",") != "low,critical" || s.PayloadRetentionDays != 30 {
		t.Fatalf("after update %+v", s)
	}
	member := tm.join(t, "m@acme.test", store.RoleMember)
	if err := tm.sv.UpdateSettings(ctx, member, tm.orgID, org.Settings{}); code(err) != "admin_only" {
		t.Fatalf("member changed settings: %v", err)
	}
	if !strings.Contains(strings.Join(events(t, tm.sv, tm.orgID), " "), "org.settings_changed:org") {
		t.Error("settings change not audited")
	}
}

// TestMembersMaskContacts: the team view shows contacts masked and never a password hash.
func TestMembersMaskContacts(t *testing.T) {
	t.Parallel()
	tm := newTeam(t, "sqlite", nil)
	if _, err := tm.sv.UpdateContact(ctx, audit.Actor{Kind: "system", ID: "test"}, tm.orgID, "boss@acme.test",
		org.Contact{Addresses: addrs("phone", "+14155554821", "slack", "U024BE7LH")}); err != nil {
		t.Fatal(err)
	}
	ms, err := tm.sv.Members(ctx, tm.orgID)
	if err != nil || len(ms) != 1 || len(ms[0].Contacts) != 2 {
		t.Fatalf("members %+v %v", ms, err)
	}
	// Each contact kind masks its own addresses (a phone is personal data; a Slack member id is not).
	phone := ms[0].Contacts[0]
	if phone.Kind != "phone" || strings.Contains(phone.Address, "5554821") || phone.Address == "" || !phone.Verified {
		t.Errorf("phone shown as %+v", phone)
	}
}
