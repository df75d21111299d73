package session_test

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

const password = "correct horse battery staple"

// cheapHash is a valid hash of password at the lowest work factor auth accepts, so that tests check
// passwords for real without paying 600,000 iterations each time.
var cheapHash = sync.OnceValue(func() string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, 100000, 32)
	if err != nil {
		panic(err)
	}
	enc := base64.RawStdEncoding
	return "$pbkdf2-sha256$i=100000$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key)
})

// clock is a test clock; whole seconds, so that PostgreSQL's microseconds round nothing.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	svc   *session.Service
	store store.Store
	clock *clock
	orgID string
	users map[string]store.User // by short name: "alice@acme.test" is users["alice"]
}

const ttl = time.Hour

// newFixture opens a store of dialect with one organization whose people are named by names, all
// with password, and a service over it (memory coordination on the same clock).
func newFixture(t *testing.T, dialect string, cfg session.Config, names ...string) *fixture {
	t.Helper()
	ctx := context.Background()
	st := testdb.Open(t, dialect)
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	if cfg.TTL == 0 {
		cfg.TTL = ttl
	}
	f := &fixture{store: st, clock: clk, orgID: uuid.NewString(), users: map[string]store.User{}}
	f.svc = session.New(session.Deps{Store: st, Coord: coord.NewMemory(clk.Now), Logger: testdb.Discard, Clock: clk.Now}, cfg)
	err := st.InOrg(ctx, f.orgID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: f.orgID, Name: "Acme", MaxTimeout: 24 * time.Hour, CreatedAt: clk.Now()}); err != nil {
			return err
		}
		for _, n := range names {
			u := store.User{OrgID: f.orgID, ID: uuid.NewString(), Email: n + "@acme.test", Name: strings.ToUpper(n[:1]) + n[1:],
				PasswordHash: cheapHash(), Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: clk.Now()}
			if err := tx.CreateUser(ctx, u); err != nil {
				return err
			}
			f.users[n] = u
		}
		return nil
	})
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return f
}

func (f *fixture) deactivate(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	err := f.store.InOrg(ctx, f.orgID, func(tx store.OrgTx) error {
		u, err := tx.UserByID(ctx, f.users[name].ID)
		if err != nil {
			return err
		}
		u.Active = false
		return tx.UpdateUser(ctx, u)
	})
	if err != nil {
		t.Fatalf("deactivate %s: %v", name, err)
	}
}

func (f *fixture) login(t *testing.T, name string) session.SignedIn {
	t.Helper()
	in, err := f.svc.Login(context.Background(), name+"@acme.test", password, "192.0.2.1")
	if err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return in
}

// wantProblem fails unless err is the problem code (of kind), and returns it.
func wantProblem(t *testing.T, err error, kind problem.Kind, code string) *problem.Error {
	t.Helper()
	p, ok := problem.As(err)
	if !ok || p.Code != code || p.Kind != kind {
		t.Fatalf("err = %v, want problem %s (kind %d)", err, code, kind)
	}
	return p
}

func eachDialect(t *testing.T, f func(t *testing.T, dialect string)) {
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			f(t, d)
		})
	}
}

// TestLogin: who gets a session, and that every refusal of credentials reads the same.
func TestLogin(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		f := newFixture(t, d, session.Config{}, "alice", "bob", "gone")
		f.deactivate(t, "gone")
		alice := f.users["alice"]

		in, err := f.svc.Login(context.Background(), "  Alice@ACME.test ", password, "192.0.2.1")
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if auth.ParseToken(in.Token, auth.SessionIDPrefix) != nil {
			t.Errorf("token %q is not a session id", in.Token)
		}
		if want := f.clock.Now().Add(ttl); !in.ExpiresAt.Equal(want) {
			t.Errorf("expires %v, want %v", in.ExpiresAt, want)
		}
		if u := in.User; u.ID != alice.ID || u.OrgID != f.orgID || u.Email != alice.Email || u.Name != "Alice" || u.Role != store.RoleMember {
			t.Errorf("user = %+v", u)
		}
		if in.User.PasswordHash != "" {
			t.Errorf("the password hash travels with the session")
		}
		p, err := f.svc.ResolveSession(context.Background(), in.Token)
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		if want := (session.Principal{OrgID: f.orgID, Kind: store.ActorUser, ID: alice.ID, Name: "Alice", Role: store.RoleMember}); p != want {
			t.Errorf("principal = %+v, want %+v", p, want)
		}
		if in2 := f.login(t, "alice"); in2.Token == in.Token {
			t.Errorf("two logins share a session id")
		}

		refused := []struct {
			name, email, password, code string
			kind                        problem.Kind
		}{
			{"wrong password", "bob@acme.test", "not the password", "invalid_credentials", problem.Unauthorized},
			{"unknown email", "nobody@acme.test", password, "invalid_credentials", problem.Unauthorized},
			{"deactivated", "gone@acme.test", password, "invalid_credentials", problem.Unauthorized},
			{"not an email", "bob", password, "invalid_login", problem.Invalid},
			{"no password", "bob@acme.test", "", "invalid_login", problem.Invalid},
		}
		var msg string
		for _, tc := range refused {
			_, err := f.svc.Login(context.Background(), tc.email, tc.password, "192.0.2.2")
			p := wantProblem(t, err, tc.kind, tc.code)
			if tc.code != "invalid_credentials" {
				continue
			}
			if msg == "" {
				msg = p.Message
			} else if p.Message != msg {
				t.Errorf("%s says %q, another refusal says %q", tc.name, p.Message, msg)
			}
		}
	})
}

// TestLoginThrottle: failed attempts are counted per account and per client address, and a spent
// bucket refuses even the right password until its window ends. Account limit 3, address limit 5.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	const (
		ok      = ""
		wrong   = "invalid_credentials"
		limited = "too_many_attempts"
		invalid = "invalid_login"
	)
	type step struct {
		user, password, addr string
		want                 string
		advance              time.Duration // before the attempt
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"account spent refuses the right password from any address", []step{
			{user: "alice", password: "x1", addr: "a", want: wrong},
			{user: "alice", password: "x2", addr: "b", want: wrong},
			{user: "alice", password: "x3", addr: "c", want: wrong},
			{user: "alice", password: password, addr: "d", want: limited},
			{user: "bob", password: password, addr: "a", want: ok},
		}},
		{"the window ends", []step{
			{user: "alice", password: "x1", addr: "a", want: wrong},
			{user: "alice", password: "x2", addr: "a", want: wrong},
			{user: "alice", password: "x3", addr: "a", want: wrong},
			{user: "alice", password: password, addr: "a", want: limited, advance: 14 * time.Minute},
			{user: "alice", password: password, addr: "a", want: ok, advance: time.Minute},
		}},
		{"success clears the account's failures", []step{
			{user: "alice", password: "x1", addr: "a", want: wrong},
			{user: "alice", password: "x2", addr: "a", want: wrong},
			{user: "alice", password: password, addr: "a", want: ok},
			{user: "alice", password: "x3", addr: "a", want: wrong},
			{user: "alice", password: "x4", addr: "a", want: wrong},
			{user: "alice", password: password, addr: "a", want: ok},
		}},
		{"address spent across accounts", []step{
			{user: "alice", password: "x1", addr: "a", want: wrong},
			{user: "alice", password: "x2", addr: "a", want: wrong},
			{user: "bob", password: "x3", addr: "a", want: wrong},
			{user: "bob", password: "x4", addr: "a", want: wrong},
			{user: "carol", password: "x5", addr: "a", want: wrong},
			{user: "carol", password: password, addr: "a", want: limited},
			{user: "carol", password: password, addr: "b", want: ok},
			// A good password does not clear the address.
			{user: "dave", password: password, addr: "a", want: limited},
		}},
		{"malformed attempts count for nothing", []step{
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: "", addr: "a", want: invalid},
			{user: "alice", password: password, addr: "a", want: ok},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "sqlite", session.Config{LoginPerAccount: 3, LoginPerAddress: 5, LoginWindow: 15 * time.Minute},
				"alice", "bob", "carol", "dave")
			for i, s := range tc.steps {
				f.clock.Advance(s.advance)
				in, err := f.svc.Login(context.Background(), s.user+"@acme.test", s.password, s.addr)
				switch {
				case s.want == ok && err != nil:
					t.Fatalf("step %d (%s from %s): %v", i, s.user, s.addr, err)
				case s.want == ok:
					if _, err := f.svc.ResolveSession(context.Background(), in.Token); err != nil {
						t.Fatalf("step %d: the new session does not resolve: %v", i, err)
					}
				default:
					p, _ := problem.As(err)
					if p == nil || p.Code != s.want {
						t.Fatalf("step %d (%s from %s): err = %v, want %s", i, s.user, s.addr, err, s.want)
					}
					if s.want == limited && (p.RetryAfter <= 0 || p.RetryAfter > 15*time.Minute) {
						t.Errorf("step %d: RetryAfter = %v, want within the 15m window", i, p.RetryAfter)
					}
					if in.Token != "" {
						t.Errorf("step %d: a refused login returned a session", i)
					}
				}
			}
		})
	}
}

// TestSessionLifecycle: a session lasts its TTL, ends at logout or when its person is deactivated,
// and the sweep deletes only expired ones.
func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		f := newFixture(t, d, session.Config{}, "alice", "bob", "carol")
		expiring := f.login(t, "alice")

		f.clock.Advance(ttl - time.Second)
		if _, err := f.svc.ResolveSession(ctx, expiring.Token); err != nil {
			t.Fatalf("a second before expiry: %v", err)
		}
		live := f.login(t, "bob")
		f.clock.Advance(time.Second)
		_, err := f.svc.ResolveSession(ctx, expiring.Token)
		wantProblem(t, err, problem.Unauthorized, "session_expired")

		// The store deletes what expired strictly before now; at the expiry instant the session is
		// already refused, so sweep a second later.
		f.clock.Advance(time.Second)
		n, err := f.svc.Sweep(ctx)
		if err != nil || n != 1 {
			t.Fatalf("sweep = %d, %v; want 1 expired session deleted", n, err)
		}
		if p, err := f.svc.ResolveSession(ctx, live.Token); err != nil || p.ID != f.users["bob"].ID {
			t.Fatalf("the live session after the sweep: %+v, %v", p, err)
		}
		if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
			t.Errorf("second sweep = %d, %v; want nothing left to delete", n, err)
		}

		// Logout ends the session; ending it again is not an error.
		if err := f.svc.Logout(ctx, f.orgID, live.Token); err != nil {
			t.Fatalf("logout: %v", err)
		}
		_, err = f.svc.ResolveSession(ctx, live.Token)
		wantProblem(t, err, problem.Unauthorized, "session_expired")
		if err := f.svc.Logout(ctx, f.orgID, live.Token); err != nil {
			t.Errorf("second logout: %v", err)
		}

		// A deactivated person's session ends at once, though it has not expired.
		carol := f.login(t, "carol")
		f.deactivate(t, "carol")
		_, err = f.svc.ResolveSession(ctx, carol.Token)
		wantProblem(t, err, problem.Unauthorized, "session_expired")

		// Not a session id at all.
		unknown, _ := auth.NewToken(auth.SessionIDPrefix)
		device, _ := auth.NewToken(auth.DeviceTokenPrefix)
		for _, tc := range []struct{ name, token, code string }{
			{"unknown", unknown.Plain, "session_expired"},
			{"empty", "", "unauthenticated"},
			{"truncated", unknown.Plain[:len(unknown.Plain)-1], "unauthenticated"},
			{"device token", device.Plain, "unauthenticated"},
		} {
			_, err := f.svc.ResolveSession(ctx, tc.token)
			if p, ok := problem.As(err); !ok || p.Code != tc.code {
				t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
			}
		}
	})
}

// TestResolveDevice: a device token names its agent until the device is revoked.
func TestResolveDevice(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		f := newFixture(t, d, session.Config{})
		tok, err := auth.NewToken(auth.DeviceTokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		dev := store.Device{ID: uuid.NewString(), Name: "build agent", TokenHash: tok.Hash, CallbackKey: auth.CallbackKey(tok.Plain), CreatedAt: f.clock.Now()}
		if err := f.store.InOrg(ctx, f.orgID, func(tx store.OrgTx) error { return tx.CreateDevice(ctx, dev) }); err != nil {
			t.Fatal(err)
		}

		p, err := f.svc.ResolveDevice(ctx, tok.Plain)
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		if want := (session.Principal{OrgID: f.orgID, Kind: store.ActorDevice, ID: dev.ID, Name: "build agent"}); p != want {
			t.Errorf("principal = %+v, want %+v", p, want)
		}
		// The device list's "last used": written by the first use, then at most once a minute.
		lastUsed := func() time.Time {
			t.Helper()
			var d store.Device
			if err := f.store.InOrg(ctx, f.orgID, func(tx store.OrgTx) (err error) { d, err = tx.DeviceByID(ctx, dev.ID); return err }); err != nil {
				t.Fatal(err)
			}
			if d.LastUsedAt == nil {
				return time.Time{}
			}
			return *d.LastUsedAt
		}
		first := f.clock.Now()
		if got := lastUsed(); !got.Equal(first) {
			t.Errorf("last used after the first request = %v, want %v", got, first)
		}
		f.clock.Advance(30 * time.Second)
		if _, err := f.svc.ResolveDevice(ctx, tok.Plain); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(first) {
			t.Errorf("last used moved within the minute: %v, want %v", got, first)
		}
		f.clock.Advance(31 * time.Second)
		if _, err := f.svc.ResolveDevice(ctx, tok.Plain); err != nil {
			t.Fatal(err)
		}
		if got, want := lastUsed(), f.clock.Now(); !got.Equal(want) {
			t.Errorf("last used after a minute = %v, want %v", got, want)
		}

		unknown, _ := auth.NewToken(auth.DeviceTokenPrefix)
		sessionID, _ := auth.NewToken(auth.SessionIDPrefix)
		for _, tc := range []struct{ name, token, code string }{
			{"unknown", unknown.Plain, "invalid_token"},
			{"session id", sessionID.Plain, "invalid_token"},
			{"junk", "abc123", "invalid_token"},
			{"with junk", tok.Plain + "x", "invalid_token"},
			{"empty", "", "invalid_token"},
		} {
			_, err := f.svc.ResolveDevice(ctx, tc.token)
			if p, ok := problem.As(err); !ok || p.Code != tc.code || p.Kind != problem.Unauthorized {
				t.Errorf("%s: err = %v, want %s", tc.name, err, tc.code)
			}
		}

		if err := f.store.InOrg(ctx, f.orgID, func(tx store.OrgTx) error { return tx.RevokeDevice(ctx, dev.ID, f.clock.Now()) }); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.ResolveDevice(ctx, tok.Plain)
		wantProblem(t, err, problem.Unauthorized, "invalid_token")
	})
}
