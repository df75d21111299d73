package storetest

// TOTP secrets, session management and login challenges (issue 13, totp helper).

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/store"
)

func init() {
	for name, c := range totpIsolationCases {
		isolationCases[name] = c
	}
}

// runTOTP is part of Run: the issue-13 behaviours.
func runTOTP(t *testing.T, open Opener) {
	t.Run("TOTP", func(t *testing.T) { t.Parallel(); testTOTP(t, open(t)) })
	t.Run("ConcurrentTOTPStep", func(t *testing.T) { t.Parallel(); testConcurrentTOTPStep(t, open(t)) })
	t.Run("SessionManagement", func(t *testing.T) { t.Parallel(); testSessionManagement(t, open(t)) })
	t.Run("LoginChallenges", func(t *testing.T) { t.Parallel(); testLoginChallenges(t, open(t)) })
}

func isoChallengeHash(a Fixture) []byte {
	h := sha256.Sum256([]byte("challenge|" + a.Org.ID))
	return h[:]
}

// setupTOTPIsolation gives org A a confirmed TOTP secret and an open login challenge.
func setupTOTPIsolation(t *testing.T, s store.Store, a Fixture) {
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: a.User.ID, Secret: []byte("sealed-a"), CreatedAt: now()}); err != nil {
			return err
		}
		if ok, err := tx.ConfirmTOTP(ctx, a.User.ID, 5, now()); err != nil || !ok {
			return fmt.Errorf("confirm: %v %v", ok, err)
		}
		return tx.CreateLoginChallenge(ctx, store.LoginChallenge{IDHash: isoChallengeHash(a), UserID: a.User.ID, ExpiresAt: now().Add(time.Hour)})
	}))
}

func totpSnapshot(t *testing.T, s store.Store, a Fixture) []any {
	var out []any
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		tt, err1 := tx.UserTOTP(ctx, a.User.ID)
		ss, err2 := tx.UserSessions(ctx, a.User.ID)
		out = append(out, tt, ss)
		return errors.Join(err1, err2)
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		c, err := tx.LoginChallengeByHash(ctx, isoChallengeHash(a))
		out = append(out, c)
		return err
	}))
	return out
}

var totpIsolationCases = map[string]func(tx store.OrgTx, a Fixture) error{
	"UserSessions": func(tx store.OrgTx, a Fixture) error {
		ss, err := tx.UserSessions(ctx, a.User.ID)
		return errors.Join(err, expect(len(ss) == 0, "UserSessions listed A's sessions"))
	},
	"DeleteUserSession": func(tx store.OrgTx, a Fixture) error {
		err := tx.DeleteUserSession(ctx, a.User.ID, a.Session.PublicID)
		return expect(errors.Is(err, store.ErrNotFound), "DeleteUserSession ended A's session")
	},
	"TouchSession": func(tx store.OrgTx, a Fixture) error {
		err := tx.TouchSession(ctx, a.Session.IDHash, now().Add(time.Hour))
		return expect(errors.Is(err, store.ErrNotFound), "TouchSession touched A's session")
	},
	"UserTOTP": func(tx store.OrgTx, a Fixture) error {
		_, err := tx.UserTOTP(ctx, a.User.ID)
		return expect(errors.Is(err, store.ErrNotFound), "UserTOTP read A's secret")
	},
	"ListUserTOTP": func(tx store.OrgTx, a Fixture) error {
		ts, err := tx.ListUserTOTP(ctx)
		return errors.Join(err, expect(len(ts) == 0, "ListUserTOTP listed A's secrets"))
	},
	"PutPendingTOTP": func(tx store.OrgTx, a Fixture) error {
		err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: a.User.ID, Secret: []byte("x"), CreatedAt: now()})
		return expect(err != nil, "PutPendingTOTP bound a secret to A's user")
	},
	"ConfirmTOTP": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.ConfirmTOTP(ctx, a.User.ID, 100, now())
		return errors.Join(err, expect(!ok, "ConfirmTOTP changed A's secret"))
	},
	"UseTOTPStep": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.UseTOTPStep(ctx, a.User.ID, 100)
		return errors.Join(err, expect(!ok, "UseTOTPStep spent A's step"))
	},
	"SetTOTPSecret": func(tx store.OrgTx, a Fixture) error {
		err := tx.SetTOTPSecret(ctx, a.User.ID, []byte("x"))
		return expect(errors.Is(err, store.ErrNotFound), "SetTOTPSecret replaced A's secret")
	},
	"DeleteUserTOTP": func(tx store.OrgTx, a Fixture) error { return tx.DeleteUserTOTP(ctx, a.User.ID) },
	"CreateLoginChallenge": func(tx store.OrgTx, a Fixture) error {
		err := tx.CreateLoginChallenge(ctx, store.LoginChallenge{IDHash: randBytes(32), UserID: a.User.ID, ExpiresAt: now().Add(time.Hour)})
		return expect(err != nil, "CreateLoginChallenge bound a challenge to A's user")
	},
	"CountChallengeAttempt": func(tx store.OrgTx, a Fixture) error {
		ok, err := tx.CountChallengeAttempt(ctx, isoChallengeHash(a), 100)
		return errors.Join(err, expect(!ok, "CountChallengeAttempt counted on A's challenge"))
	},
	"DeleteLoginChallenge": func(tx store.OrgTx, a Fixture) error { return tx.DeleteLoginChallenge(ctx, isoChallengeHash(a)) },
}

func testTOTP(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	uid := f.User.ID
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.UserTOTP(ctx, uid); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no row: want ErrNotFound, got %v", err)
		}
		created := now()
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: uid, Secret: []byte("one"), CreatedAt: created}); err != nil {
			return err
		}
		// A second Begin before confirming replaces the pending secret.
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: uid, Secret: []byte("two"), CreatedAt: created}); err != nil {
			return err
		}
		got, err := tx.UserTOTP(ctx, uid)
		want := store.UserTOTP{OrgID: f.Org.ID, UserID: uid, Secret: []byte("two"), CreatedAt: created}
		if err != nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("pending round trip: %+v, %v; want %+v", got, err, want)
		}
		// A pending secret spends no step.
		if ok, err := tx.UseTOTPStep(ctx, uid, 10); err != nil || ok {
			return fmt.Errorf("UseTOTPStep on a pending secret: %v, %v", ok, err)
		}
		at := now()
		if ok, err := tx.ConfirmTOTP(ctx, uid, 10, at); err != nil || !ok {
			return fmt.Errorf("ConfirmTOTP: %v, %v", ok, err)
		}
		if ok, err := tx.ConfirmTOTP(ctx, uid, 11, at); err != nil || ok {
			return fmt.Errorf("second ConfirmTOTP: %v, %v", ok, err)
		}
		got, err = tx.UserTOTP(ctx, uid)
		if err != nil || got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(at) || got.LastStep != 10 {
			return fmt.Errorf("confirmed: %+v, %v", got, err)
		}
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: uid, Secret: []byte("three"), CreatedAt: now()}); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("PutPendingTOTP over a confirmed secret: want ErrConflict, got %v", err)
		}
		for _, c := range []struct {
			step int64
			ok   bool
		}{{10, false}, {9, false}, {11, true}, {11, false}, {13, true}, {12, false}} {
			ok, err := tx.UseTOTPStep(ctx, uid, c.step)
			if err != nil || ok != c.ok {
				return fmt.Errorf("UseTOTPStep(%d) = %v, %v; want %v", c.step, ok, err, c.ok)
			}
		}
		if err := tx.SetTOTPSecret(ctx, uid, []byte("resealed")); err != nil {
			return err
		}
		ts, err := tx.ListUserTOTP(ctx)
		if err != nil || len(ts) != 1 || string(ts[0].Secret) != "resealed" || ts[0].LastStep != 13 {
			return fmt.Errorf("ListUserTOTP: %+v, %v", ts, err)
		}
		if err := tx.SetTOTPSecret(ctx, uuid.NewString(), []byte("x")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("SetTOTPSecret of nobody: want ErrNotFound, got %v", err)
		}
		if err := errors.Join(tx.DeleteUserTOTP(ctx, uid), tx.DeleteUserTOTP(ctx, uid)); err != nil {
			return err
		}
		if _, err := tx.UserTOTP(ctx, uid); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleted: want ErrNotFound, got %v", err)
		}
		// After disabling, a fresh enrolment starts again from step 0.
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: uid, Secret: []byte("four"), CreatedAt: now()}); err != nil {
			return err
		}
		ok, err := tx.ConfirmTOTP(ctx, uid, 1, now())
		return errors.Join(err, expect(ok, "re-enrolment not confirmed"))
	}))
}

// testConcurrentTOTPStep: of many transactions spending the same step at once, exactly one wins.
func testConcurrentTOTPStep(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: f.User.ID, Secret: []byte("s"), CreatedAt: now()}); err != nil {
			return err
		}
		_, err := tx.ConfirmTOTP(ctx, f.User.ID, 1, now())
		return err
	}))
	const n = 8
	type result struct {
		ok  bool
		err error
	}
	results := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			var r result
			r.err = s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) (err error) {
				r.ok, err = tx.UseTOTPStep(ctx, f.User.ID, 2)
				return err
			})
			results <- r
		}()
	}
	won := 0
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ok {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent uses of one step succeeded, want exactly 1", won)
	}
}

func testSessionManagement(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	older := store.Session{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: f.User.ID, CreatedAt: now().Add(-time.Minute),
		ExpiresAt: now().Add(time.Hour), UserAgent: "curl/8"}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateSession(ctx, older) }))
	var list []store.Session
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) (err error) { list, err = tx.UserSessions(ctx, f.User.ID); return err }))
	if len(list) != 2 || !reflect.DeepEqual(list[0], f.Session) {
		t.Fatalf("UserSessions: %+v", list)
	}
	// The store names a session it was given no public id for, and counts it seen when created.
	gen := list[1]
	if gen.PublicID == "" || gen.PublicID == f.Session.PublicID || !gen.LastSeenAt.Equal(older.CreatedAt) || gen.UserAgent != "curl/8" {
		t.Fatalf("generated session fields: %+v", gen)
	}
	seen := now().Add(30 * time.Second)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.TouchSession(ctx, older.IDHash, seen) }))
	if got, err := s.SessionByTokenHash(ctx, older.IDHash); err != nil || !got.Session.LastSeenAt.Equal(seen) || got.Session.PublicID != gen.PublicID {
		t.Fatalf("touched: %+v, %v", got, err)
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		other := store.User{ID: uuid.NewString(), Email: "o-" + f.User.Email, Name: "O", PasswordHash: "x", Role: store.RoleMember, Active: true, CreatedAt: now()}
		if err := tx.CreateUser(ctx, other); err != nil {
			return err
		}
		// Another person of the same org cannot end it by its public id.
		if err := tx.DeleteUserSession(ctx, other.ID, gen.PublicID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("other person's delete: want ErrNotFound, got %v", err)
		}
		if err := tx.DeleteUserSession(ctx, f.User.ID, gen.PublicID); err != nil {
			return err
		}
		if err := tx.DeleteUserSession(ctx, f.User.ID, gen.PublicID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("second delete: want ErrNotFound, got %v", err)
		}
		if err := tx.TouchSession(ctx, older.IDHash, now()); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("touch deleted: want ErrNotFound, got %v", err)
		}
		ss, err := tx.UserSessions(ctx, f.User.ID)
		return errors.Join(err, expect(len(ss) == 1 && ss[0].PublicID == f.Session.PublicID, "one session left"))
	}))
}

func testLoginChallenges(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	c := store.LoginChallenge{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: f.User.ID, ExpiresAt: now().Add(5 * time.Minute)}
	expired := store.LoginChallenge{OrgID: f.Org.ID, IDHash: randBytes(32), UserID: f.User.ID, ExpiresAt: now().Add(-time.Minute)}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateLoginChallenge(ctx, c), tx.CreateLoginChallenge(ctx, expired))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.LoginChallengeByHash(ctx, c.IDHash)
		return errors.Join(err, expect(reflect.DeepEqual(got, c), fmt.Sprintf("round trip %+v want %+v", got, c)))
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for i := 0; i < 3; i++ {
			if ok, err := tx.CountChallengeAttempt(ctx, c.IDHash, 3); err != nil || !ok {
				return fmt.Errorf("attempt %d: %v %v", i, ok, err)
			}
		}
		ok, err := tx.CountChallengeAttempt(ctx, c.IDHash, 3)
		return errors.Join(err, expect(!ok, "a fourth attempt of three was counted"))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		n, err := tx.DeleteExpiredChallenges(ctx, now())
		if err != nil || n != 1 {
			return fmt.Errorf("DeleteExpiredChallenges = %d, %v", n, err)
		}
		got, err := tx.LoginChallengeByHash(ctx, c.IDHash)
		return errors.Join(err, expect(got.Attempts == 3, "attempts not kept"))
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.DeleteLoginChallenge(ctx, c.IDHash) }))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		_, err := tx.LoginChallengeByHash(ctx, c.IDHash)
		return expect(errors.Is(err, store.ErrNotFound), "deleted challenge still found")
	}))
}
