package session_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
)

// fakeTOTP: enrolled people accept "123456", once.
type fakeTOTP struct {
	mu       sync.Mutex
	enrolled map[string]bool
	used     map[string]bool
}

func (f *fakeTOTP) Enrolled(_ context.Context, _, userID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enrolled[userID], nil
}

func (f *fakeTOTP) Verify(_ context.Context, _, userID, code string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if code != "123456" || f.used[userID] {
		return problem.New(problem.Unauthorized, "invalid_totp", "wrong")
	}
	f.used[userID] = true
	return nil
}

func withTOTP(t *testing.T, f *fixture, cfg session.Config, enrolled ...string) *fakeTOTP {
	ft := &fakeTOTP{enrolled: map[string]bool{}, used: map[string]bool{}}
	for _, n := range enrolled {
		ft.enrolled[f.users[n].ID] = true
	}
	if cfg.TTL == 0 {
		cfg.TTL = ttl
	}
	f.svc = session.New(session.Deps{Store: f.store, Coord: coord.NewMemory(f.clock.Now), Logger: testdb.Discard, Clock: f.clock.Now, TOTP: ft}, cfg)
	return ft
}

func TestTwoStepLogin(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		f := newFixture(t, d, session.Config{}, "alice", "bob")
		withTOTP(t, f, session.Config{}, "alice")
		// Without TOTP: one step.
		if in := f.login(t, "bob"); in.Token == "" {
			t.Fatal("bob got no session")
		}
		_, err := f.svc.LoginWith(ctx, session.Credentials{Email: "alice@acme.test", Password: password, ClientAddr: "192.0.2.1"})
		p := wantProblem(t, err, problem.Unauthorized, "totp_required")
		ch, ok := session.ChallengeFrom(err)
		if !ok || !strings.HasPrefix(ch, session.ChallengePrefix) || p.Details == nil {
			t.Fatalf("challenge %q", ch)
		}
		// A wrong password never yields a challenge.
		_, err = f.svc.LoginWith(ctx, session.Credentials{Email: "alice@acme.test", Password: "nope", ClientAddr: "192.0.2.1"})
		wantProblem(t, err, problem.Unauthorized, "invalid_credentials")
		_, err = f.svc.LoginTOTP(ctx, ch, "000000", "192.0.2.1", "ua")
		wantProblem(t, err, problem.Unauthorized, "invalid_totp")
		_, err = f.svc.LoginTOTP(ctx, "ony_chl_forged", "123456", "192.0.2.1", "ua")
		wantProblem(t, err, problem.Unauthorized, "invalid_challenge")
		in, err := f.svc.LoginTOTP(ctx, ch, "123456", "192.0.2.1", "Firefox\x00\n")
		if err != nil || in.Token == "" || in.User.ID != f.users["alice"].ID {
			t.Fatalf("LoginTOTP: %+v %v", in, err)
		}
		// The challenge is spent.
		_, err = f.svc.LoginTOTP(ctx, ch, "123456", "192.0.2.1", "ua")
		wantProblem(t, err, problem.Unauthorized, "invalid_challenge")
		list, err := f.svc.List(ctx, f.orgID, f.users["alice"].ID, in.Token)
		if err != nil || len(list) != 1 || !list[0].Current || list[0].UserAgent != "Firefox" {
			t.Fatalf("List: %+v %v", list, err)
		}
		// The code in the same request as the password (its one use is spent above, so it fails).
		_, err = f.svc.LoginWith(ctx, session.Credentials{Email: "alice@acme.test", Password: password, TOTP: "123456"})
		wantProblem(t, err, problem.Unauthorized, "invalid_totp")
	})
}

func TestChallengeLimits(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		f := newFixture(t, d, session.Config{}, "alice")
		withTOTP(t, f, session.Config{}, "alice")
		_, err := f.svc.Login(ctx, "alice@acme.test", password, "192.0.2.1")
		ch, _ := session.ChallengeFrom(err)
		for i := 0; i < 5; i++ {
			_, err = f.svc.LoginTOTP(ctx, ch, "000000", "192.0.2.1", "")
			wantProblem(t, err, problem.Unauthorized, "invalid_totp")
		}
		_, err = f.svc.LoginTOTP(ctx, ch, "123456", "192.0.2.1", "")
		wantProblem(t, err, problem.Unauthorized, "invalid_challenge")
		// A challenge expires.
		_, err = f.svc.Login(ctx, "alice@acme.test", password, "192.0.2.1")
		ch, _ = session.ChallengeFrom(err)
		f.clock.Advance(5*time.Minute + time.Second)
		_, err = f.svc.LoginTOTP(ctx, ch, "123456", "192.0.2.1", "")
		wantProblem(t, err, problem.Unauthorized, "invalid_challenge")
	})
}

func TestSessionsListRevokeIdle(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		f := newFixture(t, d, session.Config{}, "alice", "bob")
		withTOTP(t, f, session.Config{TTL: 12 * time.Hour, Idle: 2 * time.Hour})
		a1, a2, a3 := f.login(t, "alice"), f.login(t, "alice"), f.login(t, "alice")
		b := f.login(t, "bob")
		alice, bob := f.users["alice"].ID, f.users["bob"].ID
		list, err := f.svc.List(ctx, f.orgID, alice, a1.Token)
		if err != nil || len(list) != 3 {
			t.Fatalf("List: %+v %v", list, err)
		}
		var cur, other string
		for _, s := range list {
			if s.Current {
				cur = s.PublicID
			} else {
				other = s.PublicID
			}
			if strings.Contains(s.PublicID, "ony_ses_") || s.PublicID == "" {
				t.Fatalf("public id %q", s.PublicID)
			}
		}
		if cur == "" || other == "" {
			t.Fatal("current session not marked")
		}
		// Bob cannot end alice's session: the same not found as an unknown id.
		wantProblem(t, f.svc.Revoke(ctx, f.orgID, bob, other), problem.NotFound, "not_found")
		wantProblem(t, f.svc.Revoke(ctx, f.orgID, alice, "nope"), problem.NotFound, "not_found")
		if err := f.svc.Revoke(ctx, f.orgID, alice, other); err != nil {
			t.Fatal(err)
		}
		if list, _ := f.svc.List(ctx, f.orgID, alice, ""); len(list) != 2 {
			t.Fatalf("after revoke: %+v", list)
		}
		// RevokeAll keeps the caller's.
		n, err := f.svc.RevokeAll(ctx, f.orgID, alice, a1.Token)
		if err != nil || n != 1 {
			t.Fatalf("RevokeAll: %d %v", n, err)
		}
		for tok, live := range map[string]bool{a1.Token: true, a2.Token: false, a3.Token: false, b.Token: true} {
			_, err := f.svc.ResolveSession(ctx, tok)
			if (err == nil) != live {
				t.Fatalf("after RevokeAll: live=%v err=%v", live, err)
			}
		}
		// Idle: used every 90 minutes it lives on; left for two hours it ends, before its absolute expiry.
		for i := 0; i < 3; i++ {
			f.clock.Advance(90 * time.Minute)
			if _, err := f.svc.ResolveSession(ctx, a1.Token); err != nil {
				t.Fatalf("active session ended after %d×90m: %v", i+1, err)
			}
		}
		f.clock.Advance(2*time.Hour + time.Second)
		_, err = f.svc.ResolveSession(ctx, a1.Token)
		wantProblem(t, err, problem.Unauthorized, "session_expired")
		if _, err := f.svc.ResolveSession(ctx, b.Token); err == nil {
			t.Fatal("bob's unused session outlived its idle timeout")
		}
	})
}
