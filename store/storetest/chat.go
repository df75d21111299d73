package storetest

// Chat (issue 14): team decision tokens, the person behind a chat account, and link codes.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/store"
)

func init() {
	isolationCases["UserByContact"] = func(tx store.OrgTx, a Fixture) error {
		// A's user has slack UISO (the isolation setup); B must not find them.
		_, err := tx.UserByContact(ctx, "slack", "UISO")
		return expect(errors.Is(err, store.ErrNotFound), "UserByContact found A's user")
	}
	isolationCases["CreateLinkCode"] = func(tx store.OrgTx, a Fixture) error {
		// A code for A's user from B's scope must be refused by the composite foreign key (and must
		// not supersede A's open code: the snapshot shows it unused).
		err := tx.CreateLinkCode(ctx, store.LinkCode{Hash: randBytes(32), UserID: a.User.ID, Kind: "slack",
			CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
		return expect(err != nil, "CreateLinkCode bound a code to A's user")
	}
	isolationCases["UseLinkCode"] = func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.UseLinkCode(ctx, isoLinkHash(a), now())
		return errors.Join(err, expect(!ok, "UseLinkCode used A's code"))
	}
}

// isoLinkHash is the hash of the open link code the isolation test gives org A.
func isoLinkHash(a Fixture) []byte {
	sum := sha256.Sum256([]byte("iso-link|" + a.Org.ID))
	return sum[:]
}

// chatIsolationSetup gives org A an open link code for the isolation cases to reach for.
func chatIsolationSetup(t *testing.T, s store.Store, a Fixture) {
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return tx.CreateLinkCode(ctx, store.LinkCode{Hash: isoLinkHash(a), UserID: a.User.ID, Kind: "slack",
			CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
	}))
}

func chatSnapshot(t *testing.T, s store.Store, a Fixture) []any {
	var out []any
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		c, err := tx.LinkCodeByHash(ctx, isoLinkHash(a))
		out = append(out, c)
		return err
	}))
	return out
}

func runChat(t *testing.T, open Opener) {
	t.Run("TeamTokens", func(t *testing.T) { t.Parallel(); testTeamTokens(t, open(t)) })
	t.Run("UserByContact", func(t *testing.T) { t.Parallel(); testUserByContact(t, open(t)) })
	t.Run("LinkCodes", func(t *testing.T) { t.Parallel(); testLinkCodes(t, open(t)) })
	t.Run("LinkCodeSingleUse", func(t *testing.T) { t.Parallel(); testLinkCodeSingleUse(t, open(t)) })
}

// testTeamTokens: a token bound to a team destination has no person and round-trips its target; a
// token must name exactly one of the two.
func testTeamTokens(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	team := store.DecisionToken{OrgID: f.Org.ID, Hash: randBytes(32), HandoffID: f.Handoff.ID, Target: "slack:#incidents",
		Channel: "slack", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	person := store.DecisionToken{OrgID: f.Org.ID, Hash: randBytes(32), HandoffID: f.Handoff.ID, UserID: f.User.ID,
		Channel: "slack", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateDecisionToken(ctx, team), tx.CreateDecisionToken(ctx, person))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		for _, want := range []store.DecisionToken{team, person} {
			got, err := tx.DecisionTokenByHash(ctx, want.Hash)
			if err != nil || !reflect.DeepEqual(got, want) {
				return fmt.Errorf("token round trip:\n got %+v\nwant %+v (%v)", got, want, err)
			}
		}
		return nil
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		ok, err := tx.UseDecisionToken(ctx, team.Hash, n.Add(time.Second))
		if err != nil || !ok {
			return fmt.Errorf("team token use = %v, %v; want true", ok, err)
		}
		return nil
	}))
	for name, bad := range map[string]store.DecisionToken{
		"both":    {Hash: randBytes(32), HandoffID: f.Handoff.ID, UserID: f.User.ID, Target: "slack:#x", Channel: "slack", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
		"neither": {Hash: randBytes(32), HandoffID: f.Handoff.ID, Channel: "slack", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
	} {
		if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateDecisionToken(ctx, bad) }); err == nil {
			t.Errorf("token with %s person and target was stored", name)
		}
	}
}

// testUserByContact: a person is found by kind and address with their contacts, not by another
// kind's address, and an address two people share finds nobody.
func testUserByContact(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	other := store.User{OrgID: f.Org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Bo",
		Role: store.RoleViewer, Timezone: "UTC", Active: true, CreatedAt: n}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateUser(ctx, other),
			tx.SetContact(ctx, store.Contact{UserID: f.User.ID, Kind: "slack", Address: "U111", VerifiedAt: &n, CreatedAt: n}),
			tx.SetContact(ctx, store.Contact{UserID: f.User.ID, Kind: "telegram", Address: "42", CreatedAt: n}),
			tx.SetContact(ctx, store.Contact{UserID: other.ID, Kind: "telegram", Address: "43", CreatedAt: n}))
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		u, err := tx.UserByContact(ctx, "slack", "U111")
		if err != nil || u.ID != f.User.ID || u.Role != store.RoleAdmin || len(u.Contacts) != 2 {
			return fmt.Errorf("UserByContact(slack, U111) = %+v, %v; want %s with 2 contacts", u, err, f.User.ID)
		}
		if c, ok := u.Contact("slack"); !ok || c.VerifiedAt == nil || !c.VerifiedAt.Equal(n) {
			return fmt.Errorf("slack contact = %+v", c)
		}
		u, err = tx.UserByContact(ctx, "telegram", "43")
		if err != nil || u.ID != other.ID || u.Role != store.RoleViewer {
			return fmt.Errorf("UserByContact(telegram, 43) = %+v, %v; want %s", u, err, other.ID)
		}
		for _, c := range [][2]string{{"slack", "42"}, {"telegram", "U111"}, {"slack", "u111"}, {"slack", ""}} {
			if _, err := tx.UserByContact(ctx, c[0], c[1]); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("UserByContact(%s, %q): want ErrNotFound, got %v", c[0], c[1], err)
			}
		}
		// Two people with one address (an operator's mistake): nobody is picked.
		if err := tx.SetContact(ctx, store.Contact{UserID: other.ID, Kind: "slack", Address: "U111", CreatedAt: n}); err != nil {
			return err
		}
		if _, err := tx.UserByContact(ctx, "slack", "U111"); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("shared address: want ErrConflict, got %v", err)
		}
		return nil
	}))
}

// testLinkCodes: a link code round-trips by hash, works once and not after it expires, and a newer
// code for the same person and kind ends the older one (not another kind's, not another person's).
func testLinkCodes(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	other := store.User{OrgID: f.Org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Bo",
		Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: n}
	code := func(user, kind string, created time.Time) store.LinkCode {
		return store.LinkCode{OrgID: f.Org.ID, Hash: randBytes(32), UserID: user, Kind: kind, CreatedAt: created,
			ExpiresAt: created.Add(10 * time.Minute)}
	}
	old := code(f.User.ID, "slack", n.Add(-time.Minute))
	tg := code(f.User.ID, "telegram", n.Add(-time.Minute))
	theirs := code(other.ID, "slack", n.Add(-time.Minute))
	expired := code(f.User.ID, "telegram", n.Add(-time.Hour))
	expired.Kind = "sms" // a kind of its own, so no later code supersedes it
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateUser(ctx, other), tx.CreateLinkCode(ctx, old), tx.CreateLinkCode(ctx, tg),
			tx.CreateLinkCode(ctx, theirs), tx.CreateLinkCode(ctx, expired))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.LinkCodeByHash(ctx, old.Hash)
		if err != nil || !reflect.DeepEqual(got, old) {
			return fmt.Errorf("link code round trip:\n got %+v\nwant %+v (%v)", got, old, err)
		}
		if _, err := tx.LinkCodeByHash(ctx, randBytes(32)); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown code: want ErrNotFound, got %v", err)
		}
		return nil
	}))
	newer := code(f.User.ID, "slack", n)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateLinkCode(ctx, newer) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.LinkCodeByHash(ctx, old.Hash)
		if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(n) {
			return fmt.Errorf("superseded code UsedAt = %v, %v; want %v", got.UsedAt, err, n)
		}
		for _, c := range []store.LinkCode{tg, theirs, newer} {
			if got, err := tx.LinkCodeByHash(ctx, c.Hash); err != nil || got.UsedAt != nil {
				return fmt.Errorf("code %s/%s was superseded: %v, %v", c.UserID, c.Kind, got.UsedAt, err)
			}
		}
		return nil
	}))
	used := n.Add(time.Second)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, c := range []struct {
			name string
			hash []byte
			at   time.Time
			want bool
		}{
			{"superseded", old.Hash, used, false},
			{"first use", newer.Hash, used, true},
			{"second use", newer.Hash, used, false},
			{"expired", expired.Hash, n, false},
			{"at expiry", tg.Hash, tg.ExpiresAt, false},
			{"unknown", randBytes(32), n, false},
			{"before expiry", theirs.Hash, theirs.ExpiresAt.Add(-time.Microsecond), true},
		} {
			ok, err := tx.UseLinkCode(ctx, c.hash, c.at)
			if err != nil || ok != c.want {
				return fmt.Errorf("UseLinkCode %s = %v, %v; want %v", c.name, ok, err, c.want)
			}
		}
		return nil
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.LinkCodeByHash(ctx, newer.Hash)
		if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(used) {
			return fmt.Errorf("UsedAt = %v, %v; want %v", got.UsedAt, err, used)
		}
		return nil
	}))
	// A code for a person who does not exist, and a duplicate hash, are refused.
	bad := code(uuid.NewString(), "slack", n)
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateLinkCode(ctx, bad) }); err == nil {
		t.Error("link code for an unknown person was stored")
	}
	dup := code(other.ID, "telegram", n)
	dup.Hash = newer.Hash
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateLinkCode(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate link code hash: want ErrConflict, got %v", err)
	}
	// Deleting the person takes their codes.
	g := NewFixture(t, s, "globex")
	gc := store.LinkCode{Hash: randBytes(32), UserID: g.User.ID, Kind: "slack", CreatedAt: n, ExpiresAt: n.Add(time.Minute)}
	must(t, s.InOrg(ctx, g.Org.ID, func(tx store.OrgTx) error { return tx.CreateLinkCode(ctx, gc) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, g.Org.ID) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		_, err := tx.LinkCodeByHash(ctx, gc.Hash)
		return expect(errors.Is(err, store.ErrNotFound), "an erased org's link code survived")
	}))
}

// testLinkCodeSingleUse: of concurrent uses of one code, exactly one succeeds.
func testLinkCodeSingleUse(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	c := store.LinkCode{Hash: randBytes(32), UserID: f.User.ID, Kind: "telegram", CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateLinkCode(ctx, c) }))
	const tries = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				ok, err := tx.UseLinkCode(ctx, c.Hash, now())
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				t.Errorf("UseLinkCode: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of %d concurrent uses succeeded, want 1", wins, tries)
	}
}
