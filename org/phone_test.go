package org_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
)

const anaPhone = "+14155550123"

// texter is a fake SMS provider: it records every text and fails while fail is set.
type texter struct {
	mu   sync.Mutex
	sent []string // "to|body"
	fail error
}

func (f *texter) SendSMS(_ context.Context, to, body string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, to+"|"+body)
	return nil
}

func (f *texter) count() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.sent) }

var smsRE = regexp.MustCompile(`^\+14155550123\|ony: your verification code is ([0-9]{6})\. It expires in 10 minutes\.$`)

// last is the code of the newest text, which must be to ana's number in the agreed wording.
func (f *texter) last(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		t.Fatal("no text sent")
	}
	m := smsRE.FindStringSubmatch(f.sent[len(f.sent)-1])
	if m == nil {
		t.Fatalf("text %q is not the verification text to ana's number", f.sent[len(f.sent)-1])
	}
	return m[1]
}

type phoneEnv struct {
	linkEnv
	sms *texter
	log *bytes.Buffer
}

// newPhoneEnv is the link environment with a fake texter, a Coord on the injected clock, and ana's
// own (so unverified) phone number set.
func newPhoneEnv(t *testing.T, dialect string) phoneEnv {
	t.Helper()
	e := newLinkEnv(t, dialect)
	co := coord.NewMemory(e.clock.now)
	t.Cleanup(func() { co.Close() })
	e.sv.Coord = co
	sms := &texter{}
	e.sv.Texter = sms
	var buf bytes.Buffer
	e.sv.Logger = slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, nil))
	p := anaPhone
	if _, err := e.sv.UpdateOwnContact(ctx, e.orgID, e.ana.ID, org.Contact{Addresses: map[string]*string{"phone": &p}}); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.contact(t, e.ana.ID, "phone"); !ok || c.VerifiedAt != nil {
		t.Fatalf("ana's own number: %+v %v, want unverified", c, ok)
	}
	return phoneEnv{linkEnv: e, sms: sms, log: &buf}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (e phoneEnv) start(t *testing.T) string {
	t.Helper()
	if err := e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID); err != nil {
		t.Fatal(err)
	}
	return e.sms.last(t)
}

func (e phoneEnv) verified(t *testing.T) bool {
	t.Helper()
	c, ok := e.contact(t, e.ana.ID, "phone")
	return ok && c.VerifiedAt != nil
}

// other is a six-digit code that is not code.
func other(code string) string {
	var n int
	fmt.Sscanf(code, "%d", &n)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

// TestPhoneVerification: the code texted to the person's own number verifies it, typed any way, once;
// a wrong code changes nothing; the audit leaf names the person, sms and the method, never the number.
func TestPhoneVerification(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newPhoneEnv(t, d)
			code := e.start(t)
			if e.verified(t) {
				t.Fatal("verified before the code came back")
			}
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, other(code)), "invalid_code")
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, "12345"), "invalid_code")
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, "12345a"), "invalid_code")
			if e.verified(t) {
				t.Fatal("a wrong code verified the number")
			}
			if err := e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, " "+code[:3]+" "+code[3:]+" "); err != nil {
				t.Fatal(err)
			}
			c, ok := e.contact(t, e.ana.ID, "phone")
			if !ok || c.Address != anaPhone || c.VerifiedAt == nil || !c.VerifiedAt.Equal(e.clock.now()) {
				t.Fatalf("contact %+v %v", c, ok)
			}
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, code), "phone_verified")
			wantCode(t, e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID), "phone_verified")
			if n := e.sms.count(); n != 1 {
				t.Errorf("%d texts, want 1", n)
			}
			raw, evs := e.leaves(t, audit.ContactVerified)
			if len(evs) != 1 {
				t.Fatalf("%d contact.verified leaves", len(evs))
			}
			ev := evs[0]
			if ev.Subject != (audit.Subject{Kind: "user", ID: e.ana.ID}) || ev.Actor.ID != e.ana.ID || ev.Actor.Role != "member" ||
				ev.Channel != "sms" || !reflect.DeepEqual(ev.Details, &audit.Details{Method: audit.LinkMethodCode}) {
				t.Errorf("leaf %+v", ev)
			}
			if strings.Contains(raw[0], "4155550123") || strings.Contains(raw[0], "+1") {
				t.Errorf("leaf holds the number: %s", raw[0])
			}
		})
	}
}

// TestPhoneVerificationThrottle: three texts an hour; five tries per code, after which even the right
// code is refused until a new code is sent; an hour later texts are allowed again.
func TestPhoneVerificationThrottle(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newPhoneEnv(t, d)
			first := e.start(t)
			for range 5 {
				wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, other(first)), "invalid_code")
			}
			err := e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, first)
			wantCode(t, err, "too_many_attempts")
			if p, _ := problem.As(err); p.RetryAfter <= 0 {
				t.Errorf("RetryAfter %v", p.RetryAfter)
			}
			e.start(t)
			third := e.start(t)
			err = e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID)
			wantCode(t, err, "too_many_codes")
			if p, _ := problem.As(err); p.RetryAfter <= 0 || p.RetryAfter > time.Hour || !strings.HasSuffix(p.Message, "try again in 60 minutes") {
				t.Errorf("RetryAfter %v, message %q", p.RetryAfter, p.Message)
			}
			if n := e.sms.count(); n != 3 {
				t.Fatalf("%d texts, want 3", n)
			}
			// The new code gave fresh tries; the replaced codes no longer work.
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, first), "invalid_code")
			if err := e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, third); err != nil {
				t.Fatal(err)
			}
			// A new number, an hour later: texts again.
			p := "+14155550199"
			if _, err := e.sv.UpdateOwnContact(ctx, e.orgID, e.ana.ID, org.Contact{Addresses: map[string]*string{"phone": &p}}); err != nil {
				t.Fatal(err)
			}
			wantCode(t, e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID), "too_many_codes")
			e.clock.add(time.Hour)
			if err := e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPhoneCodeExpiry: a code works for ten minutes, not a moment longer.
func TestPhoneCodeExpiry(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newPhoneEnv(t, d)
			code := e.start(t)
			e.clock.add(org.PhoneCodeTTL)
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, code), "invalid_code")
			code = e.start(t)
			e.clock.add(org.PhoneCodeTTL - time.Second)
			if err := e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, code); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPhoneCodeBoundToNumber: a code sent to one number does not verify the number that replaced it.
func TestPhoneCodeBoundToNumber(t *testing.T) {
	t.Parallel()
	e := newPhoneEnv(t, "sqlite")
	code := e.start(t)
	p := "+14155550199"
	if _, err := e.sv.UpdateOwnContact(ctx, e.orgID, e.ana.ID, org.Contact{Addresses: map[string]*string{"phone": &p}}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, code), "invalid_code")
	if e.verified(t) {
		t.Fatal("the new number was verified by the old number's code")
	}
}

// TestPhoneVerificationRefusals: only the person themself, only a number they have, only when an SMS
// provider and a throttle are configured; a refused request spends no text of the hour.
func TestPhoneVerificationRefusals(t *testing.T) {
	t.Parallel()
	e := newPhoneEnv(t, "sqlite")
	wantCode(t, e.sv.StartPhoneVerification(ctx, e.bo, e.orgID, e.ana.ID), "people_only")
	wantCode(t, e.sv.StartPhoneVerification(ctx, e.admin, e.orgID, e.ana.ID), "people_only")
	wantCode(t, e.sv.StartPhoneVerification(ctx, audit.Actor{Kind: "device", ID: e.ana.ID}, e.orgID, e.ana.ID), "people_only")
	code := e.start(t)
	wantCode(t, e.sv.ConfirmPhone(ctx, e.bo, e.orgID, e.ana.ID, code), "people_only")
	wantCode(t, e.sv.ConfirmPhone(ctx, e.admin, e.orgID, e.ana.ID, code), "people_only")
	for range 4 {
		wantCode(t, e.sv.StartPhoneVerification(ctx, e.bo, e.orgID, e.bo.ID), "no_phone")
	}
	wantCode(t, e.sv.ConfirmPhone(ctx, e.bo, e.orgID, e.bo.ID, code), "no_phone")
	off := e.sv
	off.Texter = nil
	wantCode(t, off.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID), "phone_verification_off")
	wantCode(t, off.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, code), "phone_verification_off")
	off = e.sv
	off.Coord = nil
	wantCode(t, off.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID), "phone_verification_off")
	wantCode(t, e.sv.StartPhoneVerification(ctx, e.ana, "not-an-org", e.ana.ID), "org_not_found")
	if e.verified(t) {
		t.Fatal("verified by someone else")
	}
	if n := e.sms.count(); n != 1 {
		t.Errorf("%d texts, want 1", n)
	}
}

// TestPhoneTextFails: a provider failure is a readable problem, and the log masks the number.
func TestPhoneTextFails(t *testing.T) {
	t.Parallel()
	e := newPhoneEnv(t, "sqlite")
	e.sms.fail = errors.New("twilio: 503 Service Unavailable")
	wantCode(t, e.sv.StartPhoneVerification(ctx, e.ana, e.orgID, e.ana.ID), "sms_failed")
	log := e.log.String()
	if !strings.Contains(log, "+1••••••0123") || !strings.Contains(log, "503") || strings.Contains(log, "4155550123") {
		t.Errorf("log: %s", log)
	}
}

// seqReader yields fixed 4-byte draws, then repeats the last.
type seqReader struct {
	mu    sync.Mutex
	draws [][4]byte
}

func (r *seqReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.draws[0]
	if len(r.draws) > 1 {
		r.draws = r.draws[1:]
	}
	return copy(p, d[:]), nil
}

// TestPhoneCodeRepeat: drawing a code already used for the same number (the hash is unique) draws again.
func TestPhoneCodeRepeat(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newPhoneEnv(t, d)
			e.sv = org.WithRand(e.sv, &seqReader{draws: [][4]byte{{0, 0, 0, 7}, {0, 0, 0, 7}, {0, 0, 0, 42}}})
			if c := e.start(t); c != "000007" {
				t.Fatalf("first code %s", c)
			}
			if c := e.start(t); c != "000042" {
				t.Fatalf("second code %s, want a fresh draw", c)
			}
			wantCode(t, e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, "000007"), "invalid_code")
			if err := e.sv.ConfirmPhone(ctx, e.ana, e.orgID, e.ana.ID, "000042"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
