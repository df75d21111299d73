package totp_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/auth/totp"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

var ctx = context.Background()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type fixture struct {
	svc   *totp.Service
	deps  totp.Deps
	st    store.Store
	clk   *clock
	org   string
	alice string
	bob   string
}

const key1 = "v1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func newFixture(t *testing.T, dialect string) *fixture {
	t.Helper()
	st := testdb.Open(t, dialect)
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Parse([]string{key1})
	if err != nil {
		t.Fatal(err)
	}
	// Mid-step, so that ±1 step is ±30 s of slack either side.
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 15, 0, time.UTC)}
	f := &fixture{st: st, clk: clk, org: uuid.NewString(), alice: uuid.NewString(), bob: uuid.NewString()}
	f.deps = totp.Deps{Store: st, Keyring: kr, Coord: coord.NewMemory(clk.Now), Audit: audit.New(keys, "ony-test", nil, clk.Now),
		Logger: testdb.Discard, Clock: clk.Now}
	f.svc = totp.New(f.deps, totp.Config{})
	err = st.InOrg(ctx, f.org, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: f.org, Name: "Acme", MaxTimeout: time.Hour, CreatedAt: clk.Now()}); err != nil {
			return err
		}
		for _, id := range []string{f.alice, f.bob} {
			if err := tx.CreateUser(ctx, store.User{ID: id, Email: id + "@acme.test", Name: "x", PasswordHash: "x",
				Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: clk.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := ptotp.GenerateCodeCustom(secret, at, ptotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol begins and confirms alice's enrolment with the previous step's code, so the current step is
// still unspent, and returns the secret.
func (f *fixture) enrol(t *testing.T, user string) string {
	t.Helper()
	e, err := f.svc.Begin(ctx, f.org, user, user+"@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Confirm(ctx, f.org, user, code(t, e.Secret, f.clk.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}
	return e.Secret
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	p, ok := problem.As(err)
	if !ok || p.Code != code {
		t.Fatalf("want problem %s, got %v", code, err)
	}
}

func (f *fixture) events(t *testing.T) []string {
	t.Helper()
	var out []string
	if _, err := f.deps.Audit.Sequence(ctx, f.st, f.org); err != nil {
		t.Fatal(err)
	}
	err := f.st.InOrg(ctx, f.org, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 100)
		for _, l := range ls {
			e, err := audit.Decode(l.Data)
			if err != nil {
				return err
			}
			s := string(e.Type)
			if e.Details != nil {
				s += ":" + e.Details.Risk + ":" + e.Details.Code
			}
			out = append(out, s)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTOTP(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			t.Run("Enrolment", func(t *testing.T) { t.Parallel(); testEnrolment(t, newFixture(t, d)) })
			t.Run("Verify", func(t *testing.T) { t.Parallel(); testVerify(t, newFixture(t, d)) })
			t.Run("Throttle", func(t *testing.T) { t.Parallel(); testThrottle(t, newFixture(t, d)) })
			t.Run("ConcurrentReplay", func(t *testing.T) { t.Parallel(); testConcurrentReplay(t, newFixture(t, d)) })
			t.Run("AAD", func(t *testing.T) { t.Parallel(); testAAD(t, newFixture(t, d)) })
			t.Run("Rekey", func(t *testing.T) { t.Parallel(); testRekey(t, newFixture(t, d)) })
			t.Run("StepUp", func(t *testing.T) { t.Parallel(); testStepUp(t, newFixture(t, d)) })
		})
	}
}

func testEnrolment(t *testing.T, f *fixture) {
	if ok, err := f.svc.Enrolled(ctx, f.org, f.alice); err != nil || ok {
		t.Fatalf("Enrolled before: %v %v", ok, err)
	}
	wantCode(t, f.svc.Verify(ctx, f.org, f.alice, "123456"), "totp_not_enrolled")
	e, err := f.svc.Begin(ctx, f.org, f.alice, "alice@acme.test")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/Ony:alice@acme.test?") || !strings.Contains(e.URL, "secret="+e.Secret) ||
		!strings.Contains(e.URL, "period=30") || !strings.Contains(e.URL, "digits=6") || !strings.Contains(e.URL, "algorithm=SHA1") {
		t.Fatalf("URL %s", e.URL)
	}
	if _, err := png.Decode(bytes.NewReader(e.QRPNG)); err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	// Pending: not enrolled, and verification refuses it.
	wantCode(t, f.svc.Verify(ctx, f.org, f.alice, code(t, e.Secret, f.clk.Now())), "totp_not_enrolled")
	if ok, _ := f.svc.Enrolled(ctx, f.org, f.alice); ok {
		t.Fatal("pending secret counts as enrolled")
	}
	// A second Begin replaces the pending secret: the first one's codes no longer confirm.
	e2, err := f.svc.Begin(ctx, f.org, f.alice, "alice@acme.test")
	if err != nil || e2.Secret == e.Secret {
		t.Fatalf("second Begin: %v", err)
	}
	wantCode(t, f.svc.Confirm(ctx, f.org, f.alice, code(t, e.Secret, f.clk.Now())), "invalid_totp")
	if err := f.svc.Confirm(ctx, f.org, f.alice, code(t, e2.Secret, f.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.svc.Enrolled(ctx, f.org, f.alice); err != nil || !ok {
		t.Fatalf("Enrolled after confirm: %v %v", ok, err)
	}
	_, err = f.svc.Begin(ctx, f.org, f.alice, "alice@acme.test")
	wantCode(t, err, "totp_already_enrolled")
	// Disabling needs a valid code; the confirming code was spent.
	wantCode(t, f.svc.Disable(ctx, f.org, f.alice, code(t, e2.Secret, f.clk.Now())), "invalid_totp")
	f.clk.Advance(30 * time.Second)
	if err := f.svc.Disable(ctx, f.org, f.alice, code(t, e2.Secret, f.clk.Now())); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.svc.Enrolled(ctx, f.org, f.alice); ok {
		t.Fatal("still enrolled after Disable")
	}
	got := strings.Join(f.events(t), ",")
	if got != "member.totp_enrolled,member.totp_disabled" {
		t.Fatalf("audit: %s", got)
	}
}

func testVerify(t *testing.T, f *fixture) {
	f.svc = totp.New(f.deps, totp.Config{MaxFailures: 100}) // this test counts codes, not failures
	secret := f.enrol(t, f.alice)
	now := f.clk.Now()
	for _, c := range []struct {
		name, code, want string
	}{
		{"malformed", "12345", "invalid_totp"},
		{"letters", "abcdef", "invalid_totp"},
		{"two steps back", code(t, secret, now.Add(-60*time.Second)), "invalid_totp"},
		{"two steps ahead", code(t, secret, now.Add(60*time.Second)), "invalid_totp"},
		{"previous step (spent by confirm)", code(t, secret, now.Add(-30*time.Second)), "invalid_totp"},
		{"current", code(t, secret, now), ""},
		{"current again: replay", code(t, secret, now), "invalid_totp"},
		{"next step (skew)", code(t, secret, now.Add(30*time.Second)), ""},
	} {
		err := f.svc.Verify(ctx, f.org, f.alice, c.code)
		if c.want == "" && err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.want != "" {
			p, ok := problem.As(err)
			if !ok || p.Code != c.want {
				t.Fatalf("%s: want %s, got %v", c.name, c.want, err)
			}
		}
	}
	// Bob's codes are not alice's, and a code for a step already passed is refused even after time moves on.
	f.clk.Advance(30 * time.Second)
	wantCode(t, f.svc.Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now())), "invalid_totp") // its step was spent as "next"
	f.clk.Advance(30 * time.Second)
	if err := f.svc.Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now().Add(-30*time.Second))); err == nil {
		t.Fatal("an older step than the last spent was accepted")
	}
}

func testThrottle(t *testing.T, f *fixture) {
	secret := f.enrol(t, f.alice)
	bobSecret := f.enrol(t, f.bob)
	for i := 0; i < 5; i++ {
		wantCode(t, f.svc.Verify(ctx, f.org, f.alice, "000000"), "invalid_totp")
	}
	// The sixth attempt is refused before the code is looked at: even the right one.
	err := f.svc.Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now()))
	wantCode(t, err, "rate_limited")
	if p, _ := problem.As(err); p.RetryAfter <= 0 || p.Kind != problem.RateLimited {
		t.Fatalf("rate limited without Retry-After: %+v", p)
	}
	// Per person: bob is unaffected.
	if err := f.svc.Verify(ctx, f.org, f.bob, code(t, bobSecret, f.clk.Now())); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(15*time.Minute + time.Second)
	if err := f.svc.Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now())); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// testConcurrentReplay: the same code sent at once by many requests is accepted exactly once.
func testConcurrentReplay(t *testing.T, f *fixture) {
	secret := f.enrol(t, f.alice)
	c := code(t, secret, f.clk.Now())
	const n = 6
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- f.svc.Verify(ctx, f.org, f.alice, c) }()
	}
	ok := 0
	for i := 0; i < n; i++ {
		err := <-errs
		if err == nil {
			ok++
		} else if p, isP := problem.As(err); !isP || p.Code != "invalid_totp" {
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d concurrent uses accepted, want 1", ok, n)
	}
}

// testAAD: a sealed secret copied onto another person's row does not open there.
func testAAD(t *testing.T, f *fixture) {
	secret := f.enrol(t, f.alice)
	var row store.UserTOTP
	err := f.st.InOrg(ctx, f.org, func(tx store.OrgTx) error {
		var err error
		if row, err = tx.UserTOTP(ctx, f.alice); err != nil {
			return err
		}
		if err := tx.PutPendingTOTP(ctx, store.UserTOTP{UserID: f.bob, Secret: row.Secret, CreatedAt: f.clk.Now()}); err != nil {
			return err
		}
		_, err = tx.ConfirmTOTP(ctx, f.bob, 1, f.clk.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = f.svc.Verify(ctx, f.org, f.bob, code(t, secret, f.clk.Now()))
	if err == nil || !errors.Is(err, keyring.ErrDecrypt) {
		t.Fatalf("alice's secret on bob's row: want a decrypt error, got %v", err)
	}
	if _, isP := problem.As(err); isP {
		t.Fatal("a decrypt failure must not look like a wrong code")
	}
}

func testRekey(t *testing.T, f *fixture) {
	secret := f.enrol(t, f.alice)
	n, err := f.svc.Rekey(ctx)
	if err != nil || n != 0 {
		t.Fatalf("Rekey with one key: %d, %v", n, err)
	}
	kr2, err := keyring.Parse([]string{key1, "v2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="})
	if err != nil {
		t.Fatal(err)
	}
	d := f.deps
	d.Keyring = kr2
	svc2 := totp.New(d, totp.Config{})
	if n, err = svc2.Rekey(ctx); err != nil || n != 1 {
		t.Fatalf("Rekey to v2: %d, %v", n, err)
	}
	if n, err = svc2.Rekey(ctx); err != nil || n != 0 {
		t.Fatalf("second Rekey: %d, %v", n, err)
	}
	// Only v2 opens the row now, and it still verifies the same secret.
	kr2only, err := keyring.Parse([]string{"v2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="})
	if err != nil {
		t.Fatal(err)
	}
	d.Keyring = kr2only
	if err := totp.New(d, totp.Config{}).Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now())); err != nil {
		t.Fatalf("verify after rekey with v2 only: %v", err)
	}
	f.clk.Advance(30 * time.Second)
	if err := f.svc.Verify(ctx, f.org, f.alice, code(t, secret, f.clk.Now())); !errors.Is(err, keyring.ErrUnknownKey) {
		t.Fatalf("v1-only keyring after rekey: want ErrUnknownKey, got %v", err)
	}
}

func testStepUp(t *testing.T, f *fixture) {
	secret := f.enrol(t, f.alice)
	for risk, want := range map[string]bool{"low": false, "medium": false, "high": true, "critical": true} {
		got, err := f.svc.StepUpRequired(ctx, f.org, risk)
		if err != nil || got != want {
			t.Fatalf("default policy %s: %v %v", risk, got, err)
		}
	}
	if err := f.svc.StepUp(ctx, f.org, f.alice, "medium", ""); err != nil {
		t.Fatalf("medium without code: %v", err)
	}
	err := f.svc.StepUp(ctx, f.org, f.alice, "high", "")
	wantCode(t, err, "stepup_required")
	err = f.svc.StepUp(ctx, f.org, f.alice, "high", "000000")
	wantCode(t, err, "invalid_totp")
	if p, _ := problem.As(err); p.Kind != problem.Forbidden {
		t.Fatalf("a wrong step-up code must be 403, not %v", p.Kind)
	}
	if err := f.svc.StepUp(ctx, f.org, f.alice, "critical", code(t, secret, f.clk.Now())); err != nil {
		t.Fatal(err)
	}
	// A policy of the org's own.
	d := f.deps
	d.Policy = func(context.Context, string) ([]string, error) { return []string{"medium"}, nil }
	svc := totp.New(d, totp.Config{})
	if got, _ := svc.StepUpRequired(ctx, f.org, "critical"); got {
		t.Fatal("policy without critical still requires it")
	}
	wantCode(t, svc.StepUp(ctx, f.org, f.alice, "medium", ""), "stepup_required")
	d.Policy = func(context.Context, string) ([]string, error) { return nil, errors.New("db down") }
	if err := totp.New(d, totp.Config{}).StepUp(ctx, f.org, f.alice, "low", ""); err == nil {
		t.Fatal("a failing policy must not wave approvals through")
	}
	got := strings.Join(f.events(t), ",")
	if want := "member.totp_enrolled,stepup.failed:high:invalid_totp,stepup.passed:critical:"; got != want {
		t.Fatalf("audit:\n got %s\nwant %s", got, want)
	}
	for _, e := range f.events(t) {
		if strings.Contains(e, secret) {
			t.Fatal("secret in the audit log")
		}
	}
}
