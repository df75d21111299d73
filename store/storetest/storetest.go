// Package storetest is the one behaviour suite every store driver must pass, including the tenant
// isolation walk over every OrgTx method.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/store"
)

// Opener returns a fresh, migrated, empty store for one test.
type Opener func(t *testing.T) store.Store

// Run runs the whole suite against stores from open.
func Run(t *testing.T, open Opener) {
	t.Run("Orgs", func(t *testing.T) { t.Parallel(); testOrgs(t, open(t)) })
	t.Run("Users", func(t *testing.T) { t.Parallel(); testUsers(t, open(t)) })
	t.Run("Devices", func(t *testing.T) { t.Parallel(); testDevices(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { t.Parallel(); testSessions(t, open(t)) })
	t.Run("Handoffs", func(t *testing.T) { t.Parallel(); testHandoffs(t, open(t)) })
	t.Run("FirstDecisionWins", func(t *testing.T) { t.Parallel(); testFirstDecisionWins(t, open(t)) })
	t.Run("Idempotency", func(t *testing.T) { t.Parallel(); testIdempotency(t, open(t)) })
	t.Run("Rollback", func(t *testing.T) { t.Parallel(); testRollback(t, open(t)) })
	t.Run("QueuedWrites", func(t *testing.T) { t.Parallel(); testQueuedWrites(t, open(t)) }) // issue 12
	t.Run("Isolation", func(t *testing.T) { t.Parallel(); testIsolation(t, open(t)) })
	t.Run("UserContacts", func(t *testing.T) { t.Parallel(); testUserContacts(t, open(t)) })
	t.Run("SendByRef", func(t *testing.T) { t.Parallel(); testSendByRef(t, open(t)) })
	t.Run("HandoffLadder", func(t *testing.T) { t.Parallel(); testHandoffLadder(t, open(t)) })
	t.Run("Ladders", func(t *testing.T) { t.Parallel(); testLadders(t, open(t)) })
	t.Run("Sends", func(t *testing.T) { t.Parallel(); testSends(t, open(t)) })
	t.Run("ClaimSends", func(t *testing.T) { t.Parallel(); testClaimSends(t, open(t)) })
	t.Run("HandoffWithAgent", func(t *testing.T) { t.Parallel(); testHandoffWithAgent(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { t.Parallel(); testConcurrentClaims(t, open(t)) })
	t.Run("Inbox", func(t *testing.T) { t.Parallel(); testInbox(t, open(t)) })
	t.Run("DecisionTokens", func(t *testing.T) { t.Parallel(); testDecisionTokens(t, open(t)) })
	t.Run("OpenDecisionTokensTo", func(t *testing.T) { t.Parallel(); testOpenDecisionTokensTo(t, open(t)) }) // issue 15
	t.Run("EraseOrg", func(t *testing.T) { t.Parallel(); testEraseOrg(t, open(t)) })
	t.Run("AuditHandoffStates", func(t *testing.T) { t.Parallel(); testAuditHandoffStates(t, open(t)) })
	t.Run("AuditQueue", func(t *testing.T) { t.Parallel(); testAuditQueue(t, open(t)) })       // issue 12
	t.Run("HandoffLogged", func(t *testing.T) { t.Parallel(); testHandoffLogged(t, open(t)) }) // issue 12
	t.Run("AuditBundles", func(t *testing.T) { t.Parallel(); testAuditBundles(t, open(t)) })   // issue 12
	t.Run("ReadOrg", func(t *testing.T) { t.Parallel(); testReadOrg(t, open(t)) })
	t.Run("Jobs", func(t *testing.T) { t.Parallel(); testJobs(t, open(t)) })
	t.Run("CancelJob", func(t *testing.T) { t.Parallel(); testCancelJob(t, open(t)) })
	t.Run("ReadOrgRefusesWrites", func(t *testing.T) { t.Parallel(); testReadOrgRefusesWrites(t, open(t)) })
	t.Run("ReadSystem", func(t *testing.T) { t.Parallel(); testReadSystem(t, open(t)) })
	t.Run("ReadOrgBesideWriter", func(t *testing.T) { t.Parallel(); testReadOrgBesideWriter(t, open(t)) })
	// identity (issue 13)
	t.Run("Codes", func(t *testing.T) { t.Parallel(); testCodes(t, open(t)) })
	t.Run("CodeSingleUse", func(t *testing.T) { t.Parallel(); testCodeSingleUse(t, open(t)) })
	t.Run("OrgSettings", func(t *testing.T) { t.Parallel(); testOrgSettings(t, open(t)) })
	runTOTP(t, open) // issue 13, totp helper
	runChat(t, open) // issue 14
	// issue 17: payload retention
	runRetention(t, open)
	runExpiry(t, open) // issue 12
}

var ctx = context.Background()

// Fixture is one organization with a user, a device and a handoff.
type Fixture struct {
	Org     store.Org
	User    store.User
	Device  store.Device
	Handoff store.Handoff
	Session store.Session
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// NewFixture creates an org with one of everything.
func NewFixture(t *testing.T, s store.Store, name string) Fixture {
	t.Helper()
	n := now()
	f := Fixture{Org: store.Org{ID: uuid.NewString(), Name: name, MaxTimeout: 24 * time.Hour, CreatedAt: n}}
	f.User = store.User{OrgID: f.Org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: name + " admin",
		PasswordHash: "$pbkdf2-sha256$x", Role: store.RoleAdmin, Timezone: "Europe/Lisbon", Active: true, CreatedAt: n}
	f.Device = store.Device{OrgID: f.Org.ID, ID: uuid.NewString(), Name: "agent", TokenHash: randBytes(32), CallbackKey: randBytes(32), CreatedAt: n}
	f.Handoff = NewHandoff(f.Org.ID, f.Device.ID)
	f.Session = store.Session{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: f.User.ID, CreatedAt: n, ExpiresAt: n.Add(time.Hour),
		PublicID: uuid.NewString(), LastSeenAt: n, UserAgent: "Mozilla/5.0"}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, f.Org); err != nil {
			return err
		}
		return errors.Join(tx.CreateUser(ctx, f.User), tx.CreateDevice(ctx, f.Device),
			tx.InsertHandoff(ctx, f.Handoff), tx.CreateSession(ctx, f.Session))
	}))
	return f
}

// NewHandoff returns a pending handoff ready to insert.
func NewHandoff(orgID, deviceID string) store.Handoff {
	n := now()
	return store.Handoff{
		OrgID: orgID, ID: uuid.NewString(), DeviceID: deviceID, Action: "deploy", Title: "Deploy api", Summary: "v2",
		Risk: "high", RiskReasons: []string{"production_environment"},
		Gist:        "deploy (high): Deploy api",
		Options:     []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny"}},
		Labels:      map[string]string{"env": "prod"},
		PayloadKind: "command", PayloadSize: 3, PayloadSealed: []byte{1, 2, 3}, CallbackURL: "https://agent.example/cb",
		Status: store.StatusPending, CreatedAt: n, ExpiresAt: n.Add(time.Hour),
	}
}

// AsRead is h, as written, the way a read returns it: PayloadKept says whether there is a sealed
// payload, and the bytes stay behind (HandoffPayload).
func AsRead(h store.Handoff) store.Handoff {
	h.PayloadKept, h.PayloadSealed = h.PayloadSealed != nil, nil
	return h
}

func testOrgs(t *testing.T, s store.Store) {
	var before int
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { var err error; before, err = tx.CountOrgs(ctx); return err }))
	f := NewFixture(t, s, "acme")
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		o, err := tx.Org(ctx)
		if err != nil {
			return err
		}
		if o.ID != f.Org.ID || o.Name != "acme" || o.MaxTimeout != 24*time.Hour || !o.CreatedAt.Equal(f.Org.CreatedAt) {
			return fmt.Errorf("org round trip: got %+v want %+v", o, f.Org)
		}
		return nil
	}))
	var after int
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { var err error; after, err = tx.CountOrgs(ctx); return err }))
	if after != before+1 {
		t.Fatalf("CountOrgs: %d then %d", before, after)
	}
	err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateOrg(ctx, f.Org) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate org: want ErrConflict, got %v", err)
	}
}

func testUsers(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		u, err := tx.UserByID(ctx, f.User.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(u, f.User) {
			return fmt.Errorf("user round trip:\n got %+v\nwant %+v", u, f.User)
		}
		v := f.User
		v.ID, v.Email, v.Role, v.Active = uuid.NewString(), "viewer-"+f.User.Email, store.RoleViewer, false
		if err := tx.CreateUser(ctx, v); err != nil {
			return err
		}
		us, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		if len(us) != 2 || !sort.SliceIsSorted(us, func(i, j int) bool { return us[i].Email < us[j].Email }) {
			return fmt.Errorf("ListUsers: %+v", us)
		}
		if _, err := tx.UserByID(ctx, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("missing user: want ErrNotFound, got %v", err)
		}
		// A new password hash, and nothing else, changes.
		if err := tx.SetPasswordHash(ctx, v.ID, "new-hash"); err != nil {
			return err
		}
		got, err := tx.UserByID(ctx, v.ID)
		want := v
		want.PasswordHash, want.OrgID = "new-hash", f.Org.ID
		if err != nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("after SetPasswordHash:\n got %+v\nwant %+v (%v)", got, want, err)
		}
		if err := tx.SetPasswordHash(ctx, uuid.NewString(), "x"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("SetPasswordHash of a missing user: want ErrNotFound, got %v", err)
		}
		return nil
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		u, err := tx.UserByEmail(ctx, f.User.Email)
		if err != nil || u.ID != f.User.ID || u.OrgID != f.Org.ID {
			return fmt.Errorf("UserByEmail: %+v %v", u, err)
		}
		return nil
	}))
	// Email is unique across the instance: login does not ask which org.
	g := NewFixture(t, s, "globex")
	dup := g.User
	dup.ID, dup.Email = uuid.NewString(), f.User.Email
	err := s.InOrg(ctx, g.Org.ID, func(tx store.OrgTx) error { return tx.CreateUser(ctx, dup) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate email: want ErrConflict, got %v", err)
	}
}

func testDevices(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	d, err := s.DeviceByTokenHash(ctx, f.Device.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, f.Device) {
		t.Fatalf("device round trip:\n got %+v\nwant %+v", d, f.Device)
	}
	if _, err := s.DeviceByTokenHash(ctx, randBytes(32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: want ErrNotFound, got %v", err)
	}
	used := now().Add(-time.Minute)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.TouchDevice(ctx, f.Device.ID, used) }))
	if d, err := s.DeviceByTokenHash(ctx, f.Device.TokenHash); err != nil || d.LastUsedAt == nil || !d.LastUsedAt.Equal(used) {
		t.Fatalf("LastUsedAt = %v (%v), want %v", d.LastUsedAt, err, used)
	}
	at := now()
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.RevokeDevice(ctx, f.Device.ID, at) }))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		d, err := tx.DeviceByID(ctx, f.Device.ID)
		if err != nil {
			return err
		}
		if d.RevokedAt == nil || !d.RevokedAt.Equal(at) {
			return fmt.Errorf("RevokedAt = %v, want %v", d.RevokedAt, at)
		}
		if err := tx.RevokeDevice(ctx, f.Device.ID, at); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("second revoke: want ErrNotFound, got %v", err)
		}
		return nil
	}))
}

func testSessions(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	got, err := s.SessionByTokenHash(ctx, f.Session.IDHash)
	want := store.SessionUser{Session: f.Session, Name: f.User.Name, Role: f.User.Role, Active: true}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("session round trip (%v):\n got %+v\nwant %+v", err, got, want)
	}
	if _, err := s.SessionByTokenHash(ctx, randBytes(32)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: want ErrNotFound, got %v", err)
	}
	// A deactivated person's session is still found, for the caller to refuse.
	off := f.User
	off.Active = false
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, off) }))
	if got, err := s.SessionByTokenHash(ctx, f.Session.IDHash); err != nil || got.Active {
		t.Fatalf("deactivated person's session: active %v, %v", got.Active, err)
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, f.User) }))
	old := store.Session{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: f.User.ID, CreatedAt: now().Add(-2 * time.Hour), ExpiresAt: now().Add(-time.Hour)}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateSession(ctx, old) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		n, err := tx.DeleteExpiredSessions(ctx, now())
		if err != nil || n != 1 {
			return fmt.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
		}
		return nil
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.DeleteSession(ctx, f.Session.IDHash) }))
	if _, err := s.SessionByTokenHash(ctx, f.Session.IDHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: want ErrNotFound, got %v", err)
	}

	// Ending a person's other sessions keeps the one named, and another person's.
	other := store.User{ID: uuid.NewString(), Email: "other-" + f.User.Email, Name: "Other", PasswordHash: "x", Role: store.RoleMember,
		Active: true, CreatedAt: now()}
	sess := func(userID string) store.Session {
		return store.Session{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: userID, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
	}
	keep, end1, end2, theirs := sess(f.User.ID), sess(f.User.ID), sess(f.User.ID), sess(other.ID)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateUser(ctx, other), tx.CreateSession(ctx, keep), tx.CreateSession(ctx, end1),
			tx.CreateSession(ctx, end2), tx.CreateSession(ctx, theirs))
	}))
	alive := func() (out []bool) {
		for _, ss := range []store.Session{keep, end1, end2, theirs} {
			_, err := s.SessionByTokenHash(ctx, ss.IDHash)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatal(err)
			}
			out = append(out, err == nil)
		}
		return out
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		n, err := tx.DeleteUserSessions(ctx, f.User.ID, keep.IDHash)
		return errors.Join(err, expect(n == 2, fmt.Sprintf("DeleteUserSessions keeping one ended %d, want 2", n)))
	}))
	if got := alive(); !reflect.DeepEqual(got, []bool{true, false, false, true}) {
		t.Fatalf("after DeleteUserSessions keeping one, alive = %v", got)
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		n, err := tx.DeleteUserSessions(ctx, f.User.ID, nil)
		return errors.Join(err, expect(n == 1, fmt.Sprintf("DeleteUserSessions(nil) ended %d, want 1", n)))
	}))
	if got := alive(); !reflect.DeepEqual(got, []bool{false, false, false, true}) {
		t.Fatalf("after DeleteUserSessions(nil), alive = %v", got)
	}
}

func testHandoffs(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		h, err := tx.HandoffByID(ctx, f.Handoff.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(h, AsRead(f.Handoff)) {
			return fmt.Errorf("handoff round trip:\n got %+v\nwant %+v", h, AsRead(f.Handoff))
		}
		if b, err := tx.HandoffPayload(ctx, f.Handoff.ID); err != nil || !bytes.Equal(b, f.Handoff.PayloadSealed) {
			return fmt.Errorf("HandoffPayload = %x, %v; want %x", b, err, f.Handoff.PayloadSealed)
		}
		if _, err := tx.HandoffPayload(ctx, "0190d6b0-0000-7000-8000-000000000000"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("HandoffPayload of no handoff: %v, want ErrNotFound", err)
		}
		for i := 0; i < 3; i++ {
			h := NewHandoff(f.Org.ID, f.Device.ID)
			h.PayloadSealed, h.RiskReasons, h.Labels = nil, nil, nil
			if err := tx.InsertHandoff(ctx, h); err != nil {
				return err
			}
		}
		all, err := tx.ListHandoffs(ctx, store.HandoffFilter{})
		if err != nil || len(all) != 4 {
			return fmt.Errorf("ListHandoffs = %d, %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].CreatedAt.After(all[i-1].CreatedAt) {
				return fmt.Errorf("ListHandoffs not newest first")
			}
		}
		if b, err := tx.HandoffPayload(ctx, all[0].ID); err != nil || b != nil {
			return fmt.Errorf("HandoffPayload of a handoff without one = %x, %v; want nil", b, err)
		}
		if all[0].PayloadKept || all[0].Labels == nil || all[0].RiskReasons == nil {
			return fmt.Errorf("empty fields should round-trip as nil payload, empty maps: %+v", all[0])
		}
		two, err := tx.ListHandoffs(ctx, store.HandoffFilter{Limit: 2})
		if err != nil || len(two) != 2 {
			return fmt.Errorf("ListHandoffs limit 2 = %d, %v", len(two), err)
		}
		if err := tx.SetHandoffGist(ctx, f.Handoff.ID, "refined gist"); err != nil {
			return err
		}
		if g, err := tx.HandoffByID(ctx, f.Handoff.ID); err != nil || g.Gist != "refined gist" {
			return fmt.Errorf("SetHandoffGist: %q %v", g.Gist, err)
		}
		d := store.Decision{OptionID: "approve", ByKind: store.ActorUser, ByID: f.User.ID, ByName: "Ana", Channel: "api", Comment: "ok", DecidedAt: now()}
		ok, err := tx.FinishHandoff(ctx, f.Handoff.ID, store.StatusApproved, d)
		if err != nil || !ok {
			return fmt.Errorf("FinishHandoff = %v, %v", ok, err)
		}
		pending, err := tx.ListHandoffs(ctx, store.HandoffFilter{Status: store.StatusPending})
		if err != nil || len(pending) != 3 {
			return fmt.Errorf("pending = %d, %v", len(pending), err)
		}
		h, err = tx.HandoffByID(ctx, f.Handoff.ID)
		if err != nil {
			return err
		}
		if h.Status != store.StatusApproved || h.Decision == nil || !reflect.DeepEqual(*h.Decision, d) {
			return fmt.Errorf("decision round trip: %+v %+v", h.Status, h.Decision)
		}
		if _, err := tx.FinishHandoff(ctx, f.Handoff.ID, store.StatusPending, d); err == nil {
			return errors.New("FinishHandoff to pending must fail")
		}
		return nil
	}))
}

func testFirstDecisionWins(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	const n = 8
	wins := make(chan bool, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				ok, err := tx.FinishHandoff(ctx, f.Handoff.ID, store.StatusDenied,
					store.Decision{OptionID: "deny", ByKind: store.ActorUser, ByID: fmt.Sprint(i), Channel: "api", DecidedAt: now()})
				wins <- ok
				return err
			})
			errs <- err
		}(i)
	}
	won := 0
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if <-wins {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent decisions won, want exactly 1", won)
	}
}

func testIdempotency(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	r := store.Idempotency{OrgID: f.Org.ID, DeviceID: f.Device.ID, Key: "k1", RequestHash: randBytes(32), HandoffID: f.Handoff.ID, CreatedAt: now()}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.PutIdempotencyRecord(ctx, r) }))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.IdempotencyRecord(ctx, f.Device.ID, "k1")
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, r) {
			return fmt.Errorf("idempotency round trip:\n got %+v\nwant %+v", got, r)
		}
		if _, err := tx.IdempotencyRecord(ctx, f.Device.ID, "k2"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown key: want ErrNotFound, got %v", err)
		}
		return nil
	}))
	err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.PutIdempotencyRecord(ctx, r) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate key: want ErrConflict, got %v", err)
	}
}

func testRollback(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	h := NewHandoff(f.Org.ID, f.Device.ID)
	boom := errors.New("boom")
	err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if err := tx.InsertHandoff(ctx, h); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.HandoffByID(ctx, h.ID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("rolled-back handoff visible: %v", err)
		}
		return nil
	}))
}

// isolationCases holds, for every OrgTx method, an attempt to read or change org A's rows through a
// transaction scoped to org B. Each returns an error if anything of A's was found or changed.
var isolationCases = map[string]func(tx store.OrgTx, a Fixture) error{
	"OrgID": func(tx store.OrgTx, a Fixture) error { return expect(tx.OrgID() != a.Org.ID, "OrgID is A's") },
	"CreateOrg": func(tx store.OrgTx, a Fixture) error {
		// B's scope can only create B (which exists already); A's row is out of reach.
		err := tx.CreateOrg(ctx, store.Org{ID: a.Org.ID, Name: "x", MaxTimeout: time.Hour, CreatedAt: now()})
		return expect(errors.Is(err, store.ErrConflict), "CreateOrg did not stay in its own scope")
	},
	"Org": func(tx store.OrgTx, a Fixture) error {
		o, err := tx.Org(ctx)
		return expect(err == nil && o.ID != a.Org.ID, "Org returned A")
	},
	"LockOrg": func(tx store.OrgTx, a Fixture) error {
		o, err := tx.LockOrg(ctx)
		return expect(err == nil && o.ID != a.Org.ID, "LockOrg returned A")
	},
	"CreateUser": func(tx store.OrgTx, a Fixture) error {
		u := a.User
		u.ID, u.Email = uuid.NewString(), uuid.NewString()+"@b.example"
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		got, err := tx.UserByID(ctx, u.ID)
		return expect(err == nil && got.OrgID == tx.OrgID(), "CreateUser wrote into A")
	},
	"UserByID": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.UserByID(ctx, a.User.ID)
		return expect(errors.Is(err, store.ErrNotFound), "UserByID found A's user")
	},
	"ListUsers": func(tx store.OrgTx, a Fixture) error {
		us, err := tx.ListUsers(ctx)
		for _, u := range us {
			if u.OrgID == a.Org.ID {
				return errors.New("ListUsers listed A's user")
			}
		}
		return err
	},
	"CreateDevice": func(tx store.OrgTx, a Fixture) error {
		d := a.Device
		d.ID, d.TokenHash = uuid.NewString(), randBytes(32)
		if err := tx.CreateDevice(ctx, d); err != nil {
			return err
		}
		got, err := tx.DeviceByID(ctx, d.ID)
		return expect(err == nil && got.OrgID == tx.OrgID(), "CreateDevice wrote into A")
	},
	"DeviceByID": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.DeviceByID(ctx, a.Device.ID)
		return expect(errors.Is(err, store.ErrNotFound), "DeviceByID found A's device")
	},
	"ListDevices": func(tx store.OrgTx, a Fixture) error { // console
		ds, err := tx.ListDevices(ctx)
		for _, d := range ds {
			if d.ID == a.Device.ID {
				return expect(false, "ListDevices listed A's device")
			}
		}
		return err
	},
	"TouchDevice": func(tx store.OrgTx, a Fixture) error {
		err := tx.TouchDevice(ctx, a.Device.ID, now())
		return expect(errors.Is(err, store.ErrNotFound), "TouchDevice touched A's device")
	},
	"RevokeDevice": func(tx store.OrgTx, a Fixture) error {
		err := tx.RevokeDevice(ctx, a.Device.ID, now())
		return expect(errors.Is(err, store.ErrNotFound), "RevokeDevice touched A's device")
	},
	"CreateSession": func(tx store.OrgTx, a Fixture) error {
		// A session for A's user in B's scope must be refused by the composite key.
		err := tx.CreateSession(ctx, store.Session{IDHash: randBytes(32), UserID: a.User.ID, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
		return expect(err != nil, "CreateSession bound a session to A's user")
	},
	"DeleteSession": func(tx store.OrgTx, a Fixture) error {
		err := tx.DeleteSession(ctx, a.Session.IDHash)
		return expect(errors.Is(err, store.ErrNotFound), "DeleteSession deleted A's session")
	},
	"DeleteUserSessions": func(tx store.OrgTx, a Fixture) error {
		n, err := tx.DeleteUserSessions(ctx, a.User.ID, nil)
		return errors.Join(err, expect(n == 0, "DeleteUserSessions ended A's sessions"))
	},
	"InsertHandoff": func(tx store.OrgTx, a Fixture) error {
		// Pointing at A's device from B's scope must be refused by the composite foreign key.
		err := tx.InsertHandoff(ctx, NewHandoff(a.Org.ID, a.Device.ID))
		return expect(err != nil, "InsertHandoff referenced A's device")
	},
	"InsertHandoffLogged": func(tx store.OrgTx, a Fixture) error {
		// The same through the statement that also queues the record (testHandoffLogged stores one).
		err := tx.InsertHandoffLogged(ctx, NewHandoff(a.Org.ID, a.Device.ID), now(), []byte("b"))
		return expect(err != nil, "InsertHandoffLogged referenced A's device")
	},
	"HandoffByID": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.HandoffByID(ctx, a.Handoff.ID)
		return expect(errors.Is(err, store.ErrNotFound), "HandoffByID found A's handoff")
	},
	"HandoffPayload": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.HandoffPayload(ctx, a.Handoff.ID)
		return expect(errors.Is(err, store.ErrNotFound), "HandoffPayload found A's handoff")
	},
	"HandoffWithAgent": func(tx store.OrgTx, a Fixture) error {
		_, _, err := tx.HandoffWithAgent(ctx, a.Handoff.ID)
		return expect(errors.Is(err, store.ErrNotFound), "HandoffWithAgent found A's handoff")
	},
	"ListHandoffs": func(tx store.OrgTx, a Fixture) error {
		hs, err := tx.ListHandoffs(ctx, store.HandoffFilter{Limit: 500})
		for _, h := range hs {
			if h.OrgID == a.Org.ID {
				return errors.New("ListHandoffs listed A's handoff")
			}
		}
		return err
	},
	"FinishHandoff": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.FinishHandoff(ctx, a.Handoff.ID, store.StatusApproved, store.Decision{OptionID: "approve", DecidedAt: now()})
		if err != nil {
			return err
		}
		return expect(!ok, "FinishHandoff decided A's handoff")
	},
	"SetHandoffGist": func(tx store.OrgTx, a Fixture) error {
		err := tx.SetHandoffGist(ctx, a.Handoff.ID, "x")
		return expect(errors.Is(err, store.ErrNotFound), "SetHandoffGist changed A's handoff")
	},
	"IdempotencyRecord": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.IdempotencyRecord(ctx, a.Device.ID, "iso")
		return expect(errors.Is(err, store.ErrNotFound), "IdempotencyRecord found A's key")
	},
	"PutIdempotencyRecord": func(tx store.OrgTx, a Fixture) error {
		err := tx.PutIdempotencyRecord(ctx, store.Idempotency{DeviceID: a.Device.ID, Key: "x", RequestHash: randBytes(32), HandoffID: a.Handoff.ID, CreatedAt: now()})
		return expect(err != nil, "PutIdempotencyRecord pointed at A's handoff")
	},
	"Enqueue": func(tx store.OrgTx, a Fixture) error {
		return nil // jobs carry their org in their args and re-enter through InOrg; nothing of A's is reachable here
	},
	"EnqueueID": func(tx store.OrgTx, a Fixture) error {
		return nil // as Enqueue
	},
	"CancelJob": func(tx store.OrgTx, a Fixture) error {
		return nil // the fixture has no job; testCancelJob has another organization try to cancel one
	},
	"UpdateUser": func(tx store.OrgTx, a Fixture) error {
		u := a.User
		u.Name, u.Groups = "x", []string{"x"}
		err := tx.UpdateUser(ctx, u)
		return expect(errors.Is(err, store.ErrNotFound), "UpdateUser changed A's user")
	},
	"SetPasswordHash": func(tx store.OrgTx, a Fixture) error {
		err := tx.SetPasswordHash(ctx, a.User.ID, "x")
		return expect(errors.Is(err, store.ErrNotFound), "SetPasswordHash changed A's user")
	},
	"SetContact": func(tx store.OrgTx, a Fixture) error {
		err := tx.SetContact(ctx, store.Contact{UserID: a.User.ID, Kind: "phone", Address: "+15550000000", CreatedAt: now()})
		return expect(err != nil, "SetContact gave A's user a contact")
	},
	"DeleteContact": func(tx store.OrgTx, a Fixture) error {
		return tx.DeleteContact(ctx, a.User.ID, "slack") // the snapshot shows A's contact still there
	},
	"PutLadder": func(tx store.OrgTx, a Fixture) error {
		// A holds iso v1; the same name and version in B's scope is B's own, not a conflict with A's.
		if err := tx.PutLadder(ctx, store.LadderVersion{Name: "iso", Version: 1, Source: []byte("b"), CreatedBy: "b", CreatedAt: now()}); err != nil {
			return err
		}
		l, err := tx.LadderByName(ctx, "iso")
		return errors.Join(err, expect(l.OrgID == tx.OrgID() && string(l.Source) == "b", "PutLadder wrote into A"))
	},
	"Ladders": func(tx store.OrgTx, a Fixture) error {
		ls, err := tx.Ladders(ctx)
		return errors.Join(err, expect(len(ls) == 0, "Ladders listed A's ladder"))
	},
	"LadderByName": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.LadderByName(ctx, "iso")
		return expect(errors.Is(err, store.ErrNotFound), "LadderByName found A's ladder")
	},
	"LadderVersions": func(tx store.OrgTx, a Fixture) error { // console
		ls, err := tx.LadderVersions(ctx, "iso")
		return errors.Join(err, expect(len(ls) == 0, "LadderVersions listed A's ladder"))
	},
	"ClaimSend": func(tx store.OrgTx, a Fixture) error {
		// A send on A's handoff from B's scope must be refused by the composite foreign key.
		_, _, err := tx.ClaimSend(ctx, consoleSend(a.Handoff.ID, "iso", a.User.ID, now()))
		return expect(err != nil, "ClaimSend attached a send to A's handoff")
	},
	"ClaimSends": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.ClaimSends(ctx, []store.Send{consoleSend(a.Handoff.ID, "iso2", a.User.ID, now())})
		return expect(err != nil, "ClaimSends attached a send to A's handoff")
	},
	"SetSendState": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.SetSendState(ctx, a.Handoff.ID, "iso", nil, store.SendUpdate{State: store.SendFailed, Detail: "x", At: now()})
		return errors.Join(err, expect(!ok, "SetSendState changed A's send"))
	},
	"ListSends": func(tx store.OrgTx, a Fixture) error {
		ss, err := tx.ListSends(ctx, a.Handoff.ID)
		return errors.Join(err, expect(len(ss) == 0, "ListSends listed A's sends"))
	},
	"Inbox": func(tx store.OrgTx, a Fixture) error {
		hs, err := tx.Inbox(ctx, a.User.ID, 500)
		return errors.Join(err, expect(len(hs) == 0, "Inbox listed A's handoff"))
	},
	"CreateDecisionToken": func(tx store.OrgTx, a Fixture) error {
		err := tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: randBytes(32), HandoffID: a.Handoff.ID, UserID: a.User.ID,
			Channel: "slack", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
		return expect(err != nil, "CreateDecisionToken pointed at A's handoff")
	},
	"UseDecisionToken": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.UseDecisionToken(ctx, isoTokenHash(a), now())
		return errors.Join(err, expect(!ok, "UseDecisionToken used A's token"))
	},
	"AuditLockHead": func(tx store.OrgTx, a Fixture) error {
		h, err := tx.AuditLockHead(ctx, make([]byte, 32))
		return errors.Join(err, expect(h.Size == 0, "AuditLockHead returned A's head"))
	},
	"AuditEnqueue": func(tx store.OrgTx, a Fixture) error {
		// B's own record goes into B's queue; A's queue must not change (snapshot) and B sees only its own.
		if err := tx.AuditEnqueue(ctx, now(), []byte("b")); err != nil {
			return err
		}
		q, err := tx.AuditQueued(ctx, 0, 10)
		return errors.Join(err, expect(len(q) == 1 && string(q[0].Data) == "b", fmt.Sprintf("B's queue after its enqueue: %d records", len(q))))
	},
	"AuditQueued": func(tx store.OrgTx, a Fixture) error {
		q, err := tx.AuditQueued(ctx, 0, 10)
		return errors.Join(err, expect(len(q) == 0, "AuditQueued read A's queue"))
	},
	"AuditSequence": func(tx store.OrgTx, a Fixture) error {
		if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
			return err
		}
		// Dequeuing A's queued record from B's scope must find nothing, which fails the batch.
		err := tx.AuditSequence(ctx, store.AuditBatch{From: 0, Leaves: []store.AuditLeaf{{Index: 0, Data: []byte("b")}},
			Tiles: []store.AuditTile{{Data: make([]byte, 32)}}, Head: store.AuditHead{Size: 1, Root: make([]byte, 32), UpdatedAt: now()},
			Dequeue: []int64{isoQueuedID(a)}})
		return expect(err != nil, "AuditSequence dequeued A's record")
	},
	"AuditTiles": func(tx store.OrgTx, a Fixture) error {
		ts, err := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}})
		return errors.Join(err, expect(len(ts) == 0, "AuditTiles read A's tiles"))
	},
	"AuditReadPage": func(tx store.OrgTx, a Fixture) error {
		var p store.AuditPage
		err := tx.AuditReadPage(ctx, 0, 10, &p)
		return errors.Join(err, expect(len(p.Index) == 0 && len(p.Tiles) == 0, "AuditReadPage read A's leaves or tiles"))
	},
	"AuditLeaves": func(tx store.OrgTx, a Fixture) error {
		ls, err := tx.AuditLeaves(ctx, 0, 10)
		return errors.Join(err, expect(len(ls) == 0, "AuditLeaves read A's leaves"))
	},
	"AuditHead": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.AuditHead(ctx)
		return expect(errors.Is(err, store.ErrNotFound), "AuditHead read A's head")
	},
	"AuditPutCheckpoint": func(tx store.OrgTx, a Fixture) error {
		if err := tx.AuditPutCheckpoint(ctx, store.AuditCheckpoint{Size: 1, Note: []byte("b"), CreatedAt: now()}); err != nil {
			return err
		}
		c, err := tx.AuditLatestCheckpoint(ctx)
		return errors.Join(err, expect(string(c.Note) == "b", "AuditPutCheckpoint wrote into A"))
	},
	"AuditSeal": func(tx store.OrgTx, a Fixture) error {
		if err := tx.AuditSeal(ctx, now()); err != nil {
			return err
		}
		_, err := tx.AuditHead(ctx)
		return expect(errors.Is(err, store.ErrNotFound), "AuditSeal touched A's head")
	},
	"AuditCheckpoints": func(tx store.OrgTx, a Fixture) error {
		cs, err := tx.AuditCheckpoints(ctx, 0, 10)
		return errors.Join(err, expect(len(cs) == 0, "AuditCheckpoints read A's checkpoints"))
	},
	"AuditLatestCheckpoint": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.AuditLatestCheckpoint(ctx)
		return expect(errors.Is(err, store.ErrNotFound), "AuditLatestCheckpoint read A's checkpoint")
	},
	"AuditHandoffStates": func(tx store.OrgTx, a Fixture) error {
		hs, err := handoffStates(tx)
		if _, ok := hs[a.Handoff.ID]; ok {
			return errors.New("AuditHandoffStates listed A's handoff")
		}
		return errors.Join(err, expect(len(hs) == 1, fmt.Sprintf("AuditHandoffStates listed %d handoffs in B, want B's own one", len(hs))))
	},
}

func testIsolation(t *testing.T, s store.Store) {
	typ := reflect.TypeOf((*store.OrgTx)(nil)).Elem()
	for i := 0; i < typ.NumMethod(); i++ {
		if _, ok := isolationCases[typ.Method(i).Name]; !ok {
			t.Errorf("store.OrgTx.%s has no isolation case in storetest: add one", typ.Method(i).Name)
		}
	}
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	// A second idempotency record and pending state for A, to give every case something to find.
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return tx.PutIdempotencyRecord(ctx, store.Idempotency{DeviceID: a.Device.ID, Key: "iso", RequestHash: randBytes(32), HandoffID: a.Handoff.ID, CreatedAt: now()})
	}))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.AuditLockHead(ctx, make([]byte, 32)); err != nil {
			return err
		}
		return errors.Join(
			tx.AuditSequence(ctx, store.AuditBatch{From: 0, Leaves: []store.AuditLeaf{{Index: 0, Data: []byte("a")}},
				Tiles: []store.AuditTile{{Data: randBytes(32)}}, Head: store.AuditHead{Size: 1, Root: randBytes(32), UpdatedAt: now()}}),
			tx.AuditPutCheckpoint(ctx, store.AuditCheckpoint{Size: 1, Note: []byte("a"), CreatedAt: now()}),
			tx.AuditEnqueue(ctx, now(), []byte("a queued")))
	}))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		q, err := tx.AuditQueued(ctx, 0, 10)
		if err == nil && len(q) != 1 {
			err = fmt.Errorf("A has %d queued audit records, want 1", len(q))
		}
		if err == nil {
			isoQueued.Store(a.Org.ID, q[0].ID)
		}
		return err
	}))
	// A ladder, a console send to A's user, an unused decision token and a contact, for the escalation cases.
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		_, _, err := tx.ClaimSend(ctx, consoleSend(a.Handoff.ID, "iso", a.User.ID, now()))
		return errors.Join(err,
			tx.SetContact(ctx, store.Contact{UserID: a.User.ID, Kind: "slack", Address: "UISO", CreatedAt: now()}),
			tx.PutLadder(ctx, store.LadderVersion{Name: "iso", Version: 1, Source: []byte("a"), CreatedBy: a.User.ID, CreatedAt: now()}),
			tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: isoTokenHash(a), HandoffID: a.Handoff.ID, UserID: a.User.ID,
				Channel: "slack", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}))
	}))
	identityIsolationSetup(t, s, a) // identity (issue 13)
	setupTOTPIsolation(t, s, a)     // issue 13
	chatIsolationSetup(t, s, a)     // issue 14
	// issue 17: payload retention
	retentionIsolationSetup(t, s, a)
	before := snapshot(t, s, a)
	for name, c := range isolationCases {
		err := s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
			if err := c(tx, a); err != nil {
				return err
			}
			return errRollback // every case rolls back so they cannot interact
		})
		if !errors.Is(err, errRollback) {
			t.Errorf("isolation %s: %v", name, err)
		}
	}
	if after := snapshot(t, s, a); !reflect.DeepEqual(before, after) {
		t.Errorf("org A changed under org B's scope:\nbefore %+v\nafter  %+v", before, after)
	}
}

var errRollback = errors.New("rollback")

// isoQueued holds, by org id, the id of the audit record the isolation test queued for org A.
var isoQueued sync.Map

func isoQueuedID(a Fixture) int64 {
	id, _ := isoQueued.Load(a.Org.ID)
	n, _ := id.(int64)
	return n
}

func snapshot(t *testing.T, s store.Store, a Fixture) any {
	var out []any
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		u, err1 := tx.ListUsers(ctx)
		d, err2 := tx.DeviceByID(ctx, a.Device.ID)
		h, err3 := tx.ListHandoffs(ctx, store.HandoffFilter{Limit: 500})
		r, err4 := tx.IdempotencyRecord(ctx, a.Device.ID, "iso")
		ah, err5 := tx.AuditHead(ctx)
		ah.UpdatedAt = time.Time{}
		al, err6 := tx.AuditLeaves(ctx, 0, 100)
		hs, err7 := tx.AuditTiles(ctx, []store.AuditTile{{Level: 0, Index: 0}})
		cp, err8 := tx.AuditLatestCheckpoint(ctx)
		aq, err12 := tx.AuditQueued(ctx, 0, 100)
		ls, err9 := tx.Ladders(ctx)
		sends, err10 := tx.ListSends(ctx, a.Handoff.ID)
		inbox, err11 := tx.Inbox(ctx, a.User.ID, 500)
		out = []any{u, d, h, r, ah, al, hs, cp, ls, sends, inbox, aq}
		return errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9, err10, err11, err12)
	}))
	ss, err := s.SessionByTokenHash(ctx, a.Session.IDHash)
	must(t, err)
	out = append(out, ss)
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		dt, err := tx.DecisionTokenByHash(ctx, isoTokenHash(a))
		out = append(out, dt)
		return err
	}))
	out = append(out, chatSnapshot(t, s, a)...)
	return append(out, totpSnapshot(t, s, a)...)
}

func expect(ok bool, msg string) error {
	if ok {
		return nil
	}
	return errors.New(msg)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int) []byte {
	b := bytes.Repeat([]byte{0}, n)
	copy(b, uuid.New().NodeID())
	u := uuid.New()
	copy(b, u[:])
	if n > 16 {
		v := uuid.New()
		copy(b[16:], v[:])
	}
	return b
}

// handoffStates is what AuditHandoffStates lists, by id; an id listed twice is an error.
func handoffStates(tx store.OrgTx) (map[string]store.Status, error) {
	hs := map[string]store.Status{}
	err := tx.AuditHandoffStates(ctx, func(id string, st store.Status) error {
		if _, ok := hs[id]; ok {
			return fmt.Errorf("AuditHandoffStates listed %s twice", id)
		}
		hs[id] = st
		return nil
	})
	return hs, err
}

// testAuditHandoffStates lists every handoff of the org once, with its status; an error from the
// callback ends the listing and is returned.
func testAuditHandoffStates(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	want := map[string]store.Status{f.Handoff.ID: store.StatusPending}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, st := range []store.Status{store.StatusApproved, store.StatusDenied, store.StatusExpired, store.StatusCancelled, store.StatusPending} {
			h := NewHandoff(f.Org.ID, f.Device.ID)
			if err := tx.InsertHandoff(ctx, h); err != nil {
				return err
			}
			want[h.ID] = st
			if st.Final() {
				ok, err := tx.FinishHandoff(ctx, h.ID, st, store.Decision{ByKind: store.ActorSystem, ByID: "t", Channel: "system", DecidedAt: now()})
				if err != nil || !ok {
					return fmt.Errorf("finish %s: %v, %v", st, ok, err)
				}
			}
		}
		return nil
	}))
	must(t, s.ReadOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := handoffStates(tx)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("AuditHandoffStates listed %v, want %v", got, want)
		}
		stop := errors.New("stop")
		calls := 0
		err = tx.AuditHandoffStates(ctx, func(string, store.Status) error { calls++; return stop })
		return errors.Join(expect(errors.Is(err, stop), fmt.Sprintf("the callback's error came back as %v", err)),
			expect(calls == 1, fmt.Sprintf("the listing went on after the callback's error: %d calls", calls)))
	}))
	// Ids are UUIDs, but the store does not make them so: a store that lists ids joined by a separator
	// must list such ids whole or refuse, never split one into handoffs that do not exist.
	g := NewFixture(t, s, "odd ids")
	for _, id := range []string{"a,b", "c|d", "e\tf", "g;h"} {
		h := NewHandoff(g.Org.ID, g.Device.ID)
		h.ID = id
		must(t, s.InOrg(ctx, g.Org.ID, func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, h) }))
	}
	must(t, s.ReadOrg(ctx, g.Org.ID, func(tx store.OrgTx) error {
		got, err := handoffStates(tx)
		if err != nil {
			return nil // refused outright, as it should be if it cannot tell them apart
		}
		for _, id := range []string{g.Handoff.ID, "a,b", "c|d", "e\tf", "g;h"} {
			if got[id] != store.StatusPending {
				return fmt.Errorf("AuditHandoffStates listed %v, want %s among them", got, id)
			}
		}
		return expect(len(got) == 5, fmt.Sprintf("AuditHandoffStates listed %d handoffs, want 5: %v", len(got), got))
	}))
}

// testReadOrg: a ReadOrg transaction sees its own organization only, and one state throughout while
// another transaction commits.
func testReadOrg(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	count := func(tx store.OrgTx) int {
		hs, err := handoffStates(tx)
		must(t, err)
		return len(hs)
	}
	err := s.ReadOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.HandoffByID(ctx, a.Handoff.ID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("ReadOrg in B read A's handoff: %v", err)
		}
		before := count(tx)
		// Another transaction commits a handoff while this one is open: this one does not see it.
		must(t, s.InOrg(ctx, b.Org.ID, func(w store.OrgTx) error { return w.InsertHandoff(ctx, NewHandoff(b.Org.ID, b.Device.ID)) }))
		if after := count(tx); after != before {
			return fmt.Errorf("ReadOrg saw %d handoffs, then %d after another transaction committed", before, after)
		}
		return nil
	})
	must(t, err)
	must(t, s.ReadOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		return expect(count(tx) == 2, "a new ReadOrg does not see the handoff committed before it began")
	}))
}

// testReadOrgRefusesWrites: a write in a ReadOrg transaction fails with ErrReadOnly, whether it is a
// row (an insert, a conditional update) or a job, and leaves nothing behind.
func testReadOrgRefusesWrites(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	h := NewHandoff(a.Org.ID, a.Device.ID)
	writes := map[string]func(tx store.OrgTx) error{
		"InsertHandoff": func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, h) },
		"FinishHandoff": func(tx store.OrgTx) error {
			_, err := tx.FinishHandoff(ctx, a.Handoff.ID, store.StatusDenied, store.Decision{ByKind: store.ActorSystem, ByID: "t", DecidedAt: now()})
			return err
		},
		"Enqueue": func(tx store.OrgTx) error { return tx.Enqueue(ctx, readOnlyJob{}, nil) },
		"CancelJob": func(tx store.OrgTx) error {
			_, err := tx.CancelJob(ctx, 1)
			return err
		},
	}
	for name, write := range writes {
		err := s.ReadOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			if _, err := tx.HandoffByID(ctx, a.Handoff.ID); err != nil { // reading works
				return err
			}
			return write(tx)
		})
		if !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("%s in ReadOrg: %v, want ErrReadOnly", name, err)
		}
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.HandoffByID(ctx, h.ID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("the handoff inserted in ReadOrg: %v, want ErrNotFound", err)
		}
		got, err := tx.HandoffByID(ctx, a.Handoff.ID)
		if err != nil {
			return err
		}
		return expect(got.Status == store.StatusPending, "the handoff finished in ReadOrg is still pending")
	}))
}

type readOnlyJob struct{}

func (readOnlyJob) Kind() string { return "storetest.read_only" }

// testReadOrgBesideWriter: a ReadOrg transaction completes while another transaction holds the
// write lock (SQLite) or has uncommitted writes, and sees the state before them.
func testReadOrgBesideWriter(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	writing, readDone := make(chan struct{}), make(chan struct{})
	var order []string
	var mu sync.Mutex
	note := func(what string) { mu.Lock(); order = append(order, what); mu.Unlock() }
	writer := make(chan error, 1)
	go func() {
		writer <- s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
			_, err := tx.FinishHandoff(ctx, a.Handoff.ID, store.StatusDenied, store.Decision{ByKind: store.ActorSystem, ByID: "t", DecidedAt: now()})
			if err != nil {
				return err
			}
			close(writing)
			select { // hold the transaction open until the reader is done (or give up, failing below)
			case <-readDone:
			case <-time.After(10 * time.Second):
			}
			note("writer commits")
			return nil
		})
	}()
	<-writing
	var seen store.Status
	err := s.ReadOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		h, err := tx.HandoffByID(ctx, a.Handoff.ID)
		seen = h.Status
		return err
	})
	note("reader done")
	close(readDone)
	must(t, err)
	must(t, <-writer)
	if fmt.Sprint(order) != "[reader done writer commits]" || seen != store.StatusPending {
		t.Fatalf("order %v, reader saw %q; want the read done before the writer commits, seeing pending", order, seen)
	}
}

// testReadSystem: the instance-level lookups every request makes read committed rows through
// ReadSystem, and a write there is refused and leaves nothing behind.
func testReadSystem(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	must(t, s.ReadSystem(ctx, func(tx store.SystemTx) error {
		ids, err := tx.OrgIDs(ctx)
		return errors.Join(err, expect(slices.Contains(ids, a.Org.ID), "ReadSystem did not list the org"))
	}))
	err := s.ReadSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, a.Org.ID) })
	if !errors.Is(err, store.ErrReadOnly) {
		t.Fatalf("EraseOrg in ReadSystem: %v, want ErrReadOnly", err)
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		_, err := tx.Org(ctx)
		return err
	}))
}

// testQueuedWrites runs writes that queue behind a long one, some of which fail or panic (SQLite
// commits such a queue together, each in a savepoint): each caller gets its own outcome, a failed
// or panicked write leaves nothing, and every other write commits.
func testQueuedWrites(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	boom := errors.New("boom")
	hold, held := make(chan struct{}), make(chan struct{})
	first := NewHandoff(f.Org.ID, f.Device.ID)
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			if err := tx.InsertHandoff(ctx, first); err != nil {
				return err
			}
			close(held)
			<-hold
			return nil
		})
	}()
	<-held
	const n = 24
	type outcome struct {
		err      error
		panicked any
	}
	hs := make([]store.Handoff, n)
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		hs[i] = NewHandoff(f.Org.ID, f.Device.ID)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { out[i].panicked = recover() }()
			out[i].err = s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				if err := tx.InsertHandoff(ctx, hs[i]); err != nil {
					return err
				}
				switch i % 4 {
				case 1:
					return fmt.Errorf("write %d: %w", i, boom)
				case 2:
					panic(fmt.Sprintf("write %d panicked", i))
				}
				return nil
			})
		}()
	}
	// Let the writers reach the queue; whether they all do before the first commits changes how they
	// are grouped, not what each must see.
	time.Sleep(50 * time.Millisecond)
	close(hold)
	must(t, <-firstDone)
	wg.Wait()
	must(t, s.ReadOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.HandoffByID(ctx, first.ID); err != nil {
			return fmt.Errorf("the first write: %w", err)
		}
		for i, h := range hs {
			_, err := tx.HandoffByID(ctx, h.ID)
			switch i % 4 {
			case 1:
				if !errors.Is(out[i].err, boom) || out[i].panicked != nil {
					return fmt.Errorf("write %d: got %v / %v, want its own error", i, out[i].err, out[i].panicked)
				}
			case 2:
				if out[i].panicked != fmt.Sprintf("write %d panicked", i) {
					return fmt.Errorf("write %d: got %v / %v, want its own panic", i, out[i].err, out[i].panicked)
				}
			default:
				if out[i].err != nil || out[i].panicked != nil {
					return fmt.Errorf("write %d: got %v / %v, want success", i, out[i].err, out[i].panicked)
				}
				if err != nil {
					return fmt.Errorf("write %d succeeded but its handoff is missing: %w", i, err)
				}
				continue
			}
			if !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("write %d failed but its handoff is there (%v)", i, err)
			}
		}
		return nil
	}))
}
