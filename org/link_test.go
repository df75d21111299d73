package org_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

type linkClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *linkClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *linkClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type linkEnv struct {
	team
	clock *linkClock
	ana   audit.Actor
	bo    audit.Actor
}

func newLinkEnv(t *testing.T, dialect string) linkEnv {
	t.Helper()
	tm := newTeam(t, dialect, nil)
	clk := &linkClock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	tm.sv.Now = clk.now
	co := coord.NewMemory(nil)
	t.Cleanup(func() { co.Close() })
	tm.sv.Coord = co
	return linkEnv{team: tm, clock: clk, ana: tm.join(t, "ana@acme.test", store.RoleMember), bo: tm.join(t, "bo@acme.test", store.RoleMember)}
}

func (e linkEnv) code(t *testing.T, who audit.Actor, kind string) string {
	t.Helper()
	c, exp, err := e.sv.LinkCode(ctx, who, e.orgID, kind)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(e.clock.now().Add(10 * time.Minute)) {
		t.Fatalf("code expires %v, want 10 minutes from now", exp)
	}
	return c
}

func (e linkEnv) contact(t *testing.T, userID, kind string) (store.Contact, bool) {
	t.Helper()
	var u store.User
	if err := e.sv.Store.InOrg(ctx, e.orgID, func(tx store.OrgTx) (err error) { u, err = tx.UserByID(ctx, userID); return err }); err != nil {
		t.Fatal(err)
	}
	return u.Contact(kind)
}

// leaves returns the org's audit leaves of type typ, raw and decoded.
func (e linkEnv) leaves(t *testing.T, typ audit.EventType) ([]string, []audit.Event) {
	t.Helper()
	var raw []string
	var evs []audit.Event
	if _, err := e.sv.Audit.Sequence(ctx, e.sv.Store, e.orgID); err != nil {
		t.Fatal(err)
	}
	err := e.sv.Store.InOrg(ctx, e.orgID, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 1000)
		for _, l := range ls {
			ev, err := audit.Decode(l.Data)
			if err != nil {
				return err
			}
			if ev.Type == typ {
				raw, evs = append(raw, string(l.Data)), append(evs, ev)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw, evs
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if p, ok := problem.As(err); !ok || p.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

var linkCodeRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

// TestLinkCode: a code made in the console links the chat account that sends it, however it is typed,
// once; the contact is verified and the audit leaf holds neither the chat id nor the code.
func TestLinkCode(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := newLinkEnv(t, d)
			code := e.code(t, e.ana, "slack")
			if !linkCodeRE.MatchString(code) {
				t.Fatalf("code %q is not xxxx-xxxx-xxxx in the alphabet", code)
			}
			typed := " " + strings.ToUpper(strings.ReplaceAll(code, "-", "")) + " "
			got, err := e.sv.Link(ctx, typed, "slack", "U0ANA1")
			if err != nil || got != (channel.LinkedPerson{Name: "ana", Org: "Acme"}) {
				t.Fatalf("Link = %+v, %v", got, err)
			}
			c, ok := e.contact(t, e.ana.ID, "slack")
			if !ok || c.Address != "U0ANA1" || c.VerifiedAt == nil || !c.VerifiedAt.Equal(e.clock.now()) {
				t.Fatalf("contact %+v %v", c, ok)
			}
			_, err = e.sv.Link(ctx, code, "slack", "U0ANA1")
			wantCode(t, err, "invalid_link_code")
			raw, evs := e.leaves(t, audit.ContactLinked)
			if len(evs) != 1 {
				t.Fatalf("%d contact.linked leaves", len(evs))
			}
			ev := evs[0]
			if ev.Subject != (audit.Subject{Kind: "user", ID: e.ana.ID}) || ev.Actor.ID != e.ana.ID || ev.Channel != "slack" ||
				ev.Details == nil || ev.Details.Method != audit.LinkMethodCode {
				t.Fatalf("leaf %+v %+v", ev, ev.Details)
			}
			for _, secret := range []string{"U0ANA1", "u0ana1", strings.ReplaceAll(code, "-", ""), code} {
				if strings.Contains(raw[0], secret) {
					t.Fatalf("the leaf holds %q: %s", secret, raw[0])
				}
			}
		})
	}
}

// TestLinkCodeRefusals: a code works only for its kind, until it expires (at exactly ten minutes it
// no longer does), until a newer one replaces it; kinds without contacts have no codes; an account
// linked to another member cannot be taken over; a deactivated person cannot link.
func TestLinkCodeRefusals(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t, "sqlite")
	// Kind mismatch: a Slack code sent to the Telegram bot.
	code := e.code(t, e.ana, "slack")
	_, err := e.sv.Link(ctx, code, "telegram", "4242")
	wantCode(t, err, "invalid_link_code")
	// Expiry, with the injected clock.
	e.clock.add(10*time.Minute - time.Microsecond)
	if _, err := e.sv.Link(ctx, code, "slack", "U0ANA1"); err != nil {
		t.Fatalf("a microsecond before expiry: %v", err)
	}
	late := e.code(t, e.bo, "telegram")
	e.clock.add(10 * time.Minute)
	_, err = e.sv.Link(ctx, late, "telegram", "4343")
	wantCode(t, err, "invalid_link_code")
	// A newer code replaces the open one.
	first := e.code(t, e.bo, "telegram")
	second := e.code(t, e.bo, "telegram")
	_, err = e.sv.Link(ctx, first, "telegram", "4343")
	wantCode(t, err, "invalid_link_code")
	if p, err := e.sv.Link(ctx, second, "telegram", "4343"); err != nil || p.Name != "bo" {
		t.Fatalf("newest code: %+v %v", p, err)
	}
	// Someone else's account.
	_, err = e.sv.Link(ctx, e.code(t, e.bo, "slack"), "slack", "U0ANA1")
	wantCode(t, err, "address_taken")
	if _, ok := e.contact(t, e.bo.ID, "slack"); ok {
		t.Fatal("bo got ana's Slack account")
	}
	err = e.sv.LinkByLookup(ctx, e.bo, e.orgID, "slack", "U0ANA1")
	wantCode(t, err, "address_taken")
	// Garbage and kinds without contacts.
	for _, bad := range []string{"", "abcd", "abcd-efgh-jkmn-p", "abcd-efgh-jku!", "ünïcödé-code"} {
		_, err := e.sv.Link(ctx, bad, "slack", "U0JUNK")
		wantCode(t, err, "invalid_link_code")
	}
	for _, kind := range []string{"console", "webhook", "nope"} {
		_, _, err := e.sv.LinkCode(ctx, e.ana, e.orgID, kind)
		wantCode(t, err, "unknown_kind")
	}
	_, err = e.sv.Link(ctx, e.code(t, e.bo, "slack"), "slack", "not a member id")
	wantCode(t, err, "invalid_address")
	// A deactivated person's open code no longer links.
	pending := e.code(t, e.bo, "slack")
	if err := e.sv.Deactivate(ctx, e.admin, e.orgID, e.bo.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.sv.Link(ctx, pending, "slack", "U0BO2")
	wantCode(t, err, "account_inactive")
	if _, evs := e.leaves(t, audit.ContactLinked); len(evs) != 2 {
		t.Fatalf("%d contact.linked leaves, want 2 (ana's slack, bo's telegram)", len(evs))
	}
}

// TestLinkThrottle: five attempts per chat account per ten minutes, right or wrong; the sixth is
// refused even with a good code, and other accounts are not held back.
func TestLinkThrottle(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t, "sqlite")
	good := e.code(t, e.ana, "telegram")
	for i := range 5 {
		_, err := e.sv.Link(ctx, "0000-0000-000"+string(rune('0'+i)), "telegram", "777")
		wantCode(t, err, "invalid_link_code")
	}
	_, err := e.sv.Link(ctx, good, "telegram", "777")
	wantCode(t, err, "too_many_attempts")
	if p, _ := problem.As(err); p.RetryAfter <= 0 {
		t.Fatalf("no RetryAfter: %+v", p)
	}
	if _, ok := e.contact(t, e.ana.ID, "telegram"); ok {
		t.Fatal("a throttled attempt linked")
	}
	if _, err := e.sv.Link(ctx, good, "telegram", "778"); err != nil {
		t.Fatalf("another account: %v", err)
	}
}

// TestUnlinkAndLookup: a person unlinks their own account, an admin anyone's, another member nobody's;
// the console's email match links without a code, audited by method.
func TestUnlinkAndLookup(t *testing.T) {
	t.Parallel()
	e := newLinkEnv(t, "sqlite")
	if err := e.sv.LinkByLookup(ctx, e.ana, e.orgID, "slack", " U0ANA1 "); err != nil {
		t.Fatal(err)
	}
	if c, ok := e.contact(t, e.ana.ID, "slack"); !ok || c.Address != "U0ANA1" || c.VerifiedAt == nil {
		t.Fatalf("looked-up contact %+v %v", c, ok)
	}
	_, evs := e.leaves(t, audit.ContactLinked)
	if len(evs) != 1 || evs[0].Details == nil || evs[0].Details.Method != audit.LinkMethodEmail {
		t.Fatalf("leaves %+v", evs)
	}
	wantCode(t, e.sv.Unlink(ctx, e.bo, e.orgID, e.ana.ID, "slack"), "admin_only")
	if err := e.sv.Unlink(ctx, e.ana, e.orgID, e.ana.ID, "slack"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.contact(t, e.ana.ID, "slack"); ok {
		t.Fatal("still linked")
	}
	// Nothing linked: nothing to do, nothing recorded.
	if err := e.sv.Unlink(ctx, e.ana, e.orgID, e.ana.ID, "slack"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sv.Link(ctx, e.code(t, e.bo, "telegram"), "telegram", "99"); err != nil {
		t.Fatal(err)
	}
	if err := e.sv.Unlink(ctx, e.admin, e.orgID, e.bo.ID, "telegram"); err != nil {
		t.Fatal(err)
	}
	raw, evs := e.leaves(t, audit.ContactUnlinked)
	if len(evs) != 2 || evs[0].Subject.ID != e.ana.ID || evs[1].Subject.ID != e.bo.ID || evs[1].Actor.ID != e.admin.ID || evs[1].Channel != "telegram" {
		t.Fatalf("unlinked leaves %+v", evs)
	}
	if strings.Contains(raw[1], `"99"`) {
		t.Fatalf("the leaf holds the chat id: %s", raw[1])
	}
}
