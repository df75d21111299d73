package storetest

// Identity (issue 13): one-time codes, organization settings and last activity.

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
	isolationCases["CreateCode"] = func(tx store.OrgTx, a Fixture) error {
		// A reset code for A's user from B's scope must be refused by the composite foreign key.
		err := tx.CreateCode(ctx, store.OneTimeCode{ID: uuid.NewString(), Purpose: store.CodeReset, Email: a.User.Email,
			UserID: a.User.ID, Hash: randBytes(32), CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
		return expect(err != nil, "CreateCode bound a code to A's user")
	}
	isolationCases["UseCode"] = func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.UseCode(ctx, isoCodeID(a), now())
		return errors.Join(err, expect(!ok, "UseCode used A's code"))
	}
	isolationCases["SupersedeCodes"] = func(tx store.OrgTx, a Fixture) error {
		n, err := tx.SupersedeCodes(ctx, store.CodeInvite, "iso@example.com", now())
		return errors.Join(err, expect(n == 0, "SupersedeCodes ended A's code"))
	}
	isolationCases["UpdateOrgSettings"] = func(tx store.OrgTx, a Fixture) error {
		if err := tx.UpdateOrgSettings(ctx, []string{"critical"}, 9); err != nil {
			return err
		}
		o, err := tx.Org(ctx)
		return errors.Join(err, expect(o.ID == tx.OrgID() && o.PayloadRetentionDays == 9, "UpdateOrgSettings missed its own org"))
	}
	isolationCases["TouchUser"] = func(tx store.OrgTx, a Fixture) error {
		err := tx.TouchUser(ctx, a.User.ID, now()) // the snapshot shows A's user untouched
		return expect(errors.Is(err, store.ErrNotFound), "TouchUser touched A's user")
	}
}

// isoCodeID is the id of the open invite the isolation test gives org A.
func isoCodeID(a Fixture) string {
	sum := sha256.Sum256([]byte("iso-code|" + a.Org.ID))
	return uuid.Must(uuid.FromBytes(sum[:16])).String()
}

// identityIsolationSetup gives org A an open invite for the isolation cases to reach for.
func identityIsolationSetup(t *testing.T, s store.Store, a Fixture) {
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return tx.CreateCode(ctx, store.OneTimeCode{ID: isoCodeID(a), Purpose: store.CodeInvite, Email: "iso@example.com",
			Role: store.RoleMember, Hash: randBytes(32), CreatedBy: a.User.ID, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)})
	}))
}

func newCode(f Fixture, purpose store.CodePurpose, email string, created time.Time, ttl time.Duration) store.OneTimeCode {
	c := store.OneTimeCode{OrgID: f.Org.ID, ID: uuid.NewString(), Purpose: purpose, Email: email, Hash: randBytes(32),
		CreatedBy: f.User.ID, CreatedAt: created, ExpiresAt: created.Add(ttl)}
	if purpose == store.CodeInvite {
		c.Role = store.RoleViewer
	} else {
		c.UserID, c.CreatedBy = f.User.ID, ""
	}
	return c
}

// testCodes: a code round-trips, is found by hash, works once and not after it expires, and a newer
// code for the same email and purpose supersedes the older ones (and only those).
func testCodes(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	inv := newCode(f, store.CodeInvite, "new@example.com", n, 7*24*time.Hour)
	reset := newCode(f, store.CodeReset, f.User.Email, n, time.Hour)
	expired := newCode(f, store.CodeInvite, "late@example.com", n.Add(-2*time.Hour), time.Hour)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateCode(ctx, inv), tx.CreateCode(ctx, reset), tx.CreateCode(ctx, expired))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		for _, want := range []store.OneTimeCode{inv, reset} {
			got, err := tx.CodeByHash(ctx, want.Hash)
			if err != nil || !reflect.DeepEqual(got, want) {
				return fmt.Errorf("code round trip:\n got %+v\nwant %+v (%v)", got, want, err)
			}
		}
		if _, err := tx.CodeByHash(ctx, randBytes(32)); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown code: want ErrNotFound, got %v", err)
		}
		got, err := tx.OpenCodeByEmail(ctx, store.CodeInvite, "new@example.com", n)
		if err != nil || got.ID != inv.ID {
			return fmt.Errorf("OpenCodeByEmail = %+v, %v", got, err)
		}
		if _, err := tx.OpenCodeByEmail(ctx, store.CodeInvite, "late@example.com", n); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("OpenCodeByEmail found an expired invite: %v", err)
		}
		if _, err := tx.OpenCodeByEmail(ctx, store.CodeReset, "new@example.com", n); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("OpenCodeByEmail crossed purposes: %v", err)
		}
		return nil
	}))
	used := n.Add(time.Second)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, c := range []struct {
			name string
			id   string
			at   time.Time
			want bool
		}{
			{"first use", inv.ID, used, true},
			{"second use", inv.ID, used.Add(time.Second), false},
			{"expired", expired.ID, n, false},
			{"at expiry", reset.ID, reset.ExpiresAt, false},
			{"unknown", uuid.NewString(), n, false},
			{"a microsecond before expiry", reset.ID, reset.ExpiresAt.Add(-time.Microsecond), true},
		} {
			ok, err := tx.UseCode(ctx, c.id, c.at)
			if err != nil || ok != c.want {
				return fmt.Errorf("UseCode %s = %v, %v; want %v", c.name, ok, err, c.want)
			}
		}
		return nil
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.CodeByHash(ctx, inv.Hash)
		if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(used) {
			return fmt.Errorf("UsedAt = %v, %v; want %v", got.UsedAt, err, used)
		}
		if _, err := tx.OpenCodeByEmail(ctx, store.CodeInvite, "new@example.com", n); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("OpenCodeByEmail found a used invite: %v", err)
		}
		return nil
	}))

	// Supersede: two open invites for one email and one for another; only the first email's end.
	a1 := newCode(f, store.CodeInvite, "twice@example.com", n, time.Hour)
	a2 := newCode(f, store.CodeInvite, "twice@example.com", n.Add(time.Millisecond), time.Hour)
	other := newCode(f, store.CodeInvite, "other@example.com", n, time.Hour)
	otherReset := newCode(f, store.CodeReset, f.User.Email, n, time.Hour)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateCode(ctx, a1), tx.CreateCode(ctx, a2), tx.CreateCode(ctx, other), tx.CreateCode(ctx, otherReset))
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		k, err := tx.SupersedeCodes(ctx, store.CodeInvite, "twice@example.com", n.Add(time.Second))
		if err != nil || k != 2 {
			return fmt.Errorf("SupersedeCodes = %d, %v; want 2", k, err)
		}
		for _, c := range []struct {
			id   string
			want bool
		}{{a1.ID, false}, {a2.ID, false}, {other.ID, true}, {otherReset.ID, true}} {
			if ok, err := tx.UseCode(ctx, c.id, n.Add(2*time.Second)); err != nil || ok != c.want {
				return fmt.Errorf("after supersede, UseCode(%s) = %v, %v; want %v", c.id, ok, err, c.want)
			}
		}
		return nil
	}))

	// A duplicate hash is refused; so is an unknown purpose.
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { c := inv; c.ID = uuid.NewString(); return tx.CreateCode(ctx, c) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate code hash: want ErrConflict, got %v", err)
	}
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		c := newCode(f, "bogus", "x@example.com", n, time.Hour)
		return tx.CreateCode(ctx, c)
	}); err == nil {
		t.Error("a code with an unknown purpose was stored")
	}
	// Erasing the organization takes its codes, invites and resets alike.
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, f.Org.ID) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		for _, c := range []store.OneTimeCode{inv, reset, other, otherReset} {
			if _, err := tx.CodeByHash(ctx, c.Hash); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("code %s survived erasure: %v", c.ID, err)
			}
		}
		return nil
	}))
}

// testCodeSingleUse: of many concurrent uses of one code, exactly one wins.
func testCodeSingleUse(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	c := newCode(f, store.CodeInvite, "race@example.com", now(), time.Hour)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateCode(ctx, c) }))
	const racers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, errs := 0, []error{}
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok bool
			err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				var err error
				ok, err = tx.UseCode(ctx, c.ID, now())
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				wins++
			}
		}()
	}
	wg.Wait()
	// A loser may see a serialisation error instead of false; what matters is one winner, never two.
	if wins != 1 {
		t.Fatalf("%d of %d concurrent uses won (errors: %v); want exactly 1", wins, racers, errs)
	}
}

// testOrgSettings: a new org has the default step-up risks and keeps payloads; settings round-trip and
// stay in their org; TouchUser records activity.
func testOrgSettings(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		o, err := tx.Org(ctx)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(o.StepUpRisks, []string{"high", "critical"}) || o.PayloadRetentionDays != 0 {
			return fmt.Errorf("new org settings: %v, %d", o.StepUpRisks, o.PayloadRetentionDays)
		}
		if err := tx.UpdateOrgSettings(ctx, []string{"medium", "high", "critical"}, 30); err != nil {
			return err
		}
		if o, err = tx.Org(ctx); err != nil || !reflect.DeepEqual(o.StepUpRisks, []string{"medium", "high", "critical"}) || o.PayloadRetentionDays != 30 {
			return fmt.Errorf("updated settings: %v, %d, %v", o.StepUpRisks, o.PayloadRetentionDays, err)
		}
		if err := tx.UpdateOrgSettings(ctx, nil, 0); err != nil {
			return err
		}
		if o, err = tx.Org(ctx); err != nil || len(o.StepUpRisks) != 0 || o.PayloadRetentionDays != 0 {
			return fmt.Errorf("cleared settings: %v, %d, %v", o.StepUpRisks, o.PayloadRetentionDays, err)
		}
		return nil
	}))
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		o, err := tx.Org(ctx)
		return errors.Join(err, expect(len(o.StepUpRisks) == 2 && o.PayloadRetentionDays == 0, "B's settings changed with A's"))
	}))
	at := now().Add(-time.Minute)
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		u, err := tx.UserByID(ctx, a.User.ID)
		if err != nil || u.LastActiveAt != nil {
			return fmt.Errorf("new user LastActiveAt = %v, %v", u.LastActiveAt, err)
		}
		if err := tx.TouchUser(ctx, a.User.ID, at); err != nil {
			return err
		}
		if err := tx.TouchUser(ctx, uuid.NewString(), at); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("TouchUser of nobody: %v", err)
		}
		us, err := tx.ListUsers(ctx)
		if err != nil || len(us) != 1 || us[0].LastActiveAt == nil || !us[0].LastActiveAt.Equal(at) {
			return fmt.Errorf("after TouchUser: %+v, %v", us, err)
		}
		return nil
	}))
}
