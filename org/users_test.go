package org_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

func ptr[T any](v T) *T { return &v }

// kinds are the contact kinds people's settings may hold, as `ony serve` wires them.
var kinds = app.BuiltinKinds()

// addrs is an address change keyed by contact kind: addrs("phone", "+1555…", "slack", "U1").
func addrs(kv ...string) map[string]*string {
	m := map[string]*string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = ptr(kv[i+1])
	}
	return m
}

// address is u's contact of kind, or "".
func address(u store.User, kind string) string {
	c, _ := u.Contact(kind)
	return c.Address
}

// fields lists the fields a CreateUser or UpdateContact error complains about, in order.
func fields(err error) []string {
	var out []string
	for _, p := range org.Problems(err) {
		out = append(out, p.Field)
	}
	return out
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sv := newService(t, d)
			by := audit.Actor{Kind: "system", ID: "test"}
			o, err := sv.Create(ctx, by, org.NewOrg{Name: "Acme", AdminEmail: "boss@acme.test"})
			if err != nil {
				t.Fatal(err)
			}
			u, err := sv.CreateUser(ctx, by, o.OrgID, org.NewUser{Email: " Ana@Acme.test ", Name: " Ana "})
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != "ana@acme.test" || u.Name != "Ana" || u.Role != store.RoleMember || len(u.Password) < 12 || u.UserID == "" {
				t.Fatalf("created %+v", u)
			}
			err = sv.Store.InOrg(ctx, o.OrgID, func(tx store.OrgTx) error {
				got, err := tx.UserByID(ctx, u.UserID)
				if err != nil {
					return err
				}
				if got.Email != u.Email || got.Role != store.RoleMember || !got.Active || got.Timezone != "UTC" || len(got.Contacts) != 0 || len(got.Groups) != 0 {
					t.Errorf("stored %+v", got)
				}
				if ok, err := auth.VerifyPassword(got.PasswordHash, u.Password); !ok || err != nil {
					t.Errorf("the one-time password does not sign in: %v", err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(events(t, sv, o.OrgID), " "); got != "org.created:org member.invited:user member.invited:user" {
				t.Fatalf("audit events: %s", got)
			}
			if _, err := sv.CreateUser(ctx, by, o.OrgID, org.NewUser{Email: "ana@acme.test", Name: "Ana again"}); code(err) != "email_taken" {
				t.Fatalf("duplicate email: %v", err)
			}
			if _, err := sv.CreateUser(ctx, by, "00000000-0000-4000-8000-000000000001", org.NewUser{Email: "x@acme.test", Name: "X"}); code(err) != "org_not_found" {
				t.Fatalf("unknown org: %v", err)
			}
			if _, err := sv.CreateUser(ctx, by, "not-a-uuid", org.NewUser{Email: "x@acme.test", Name: "X"}); code(err) != "org_not_found" {
				t.Fatalf("malformed org id: %v", err)
			}
		})
	}
}

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	sv := org.Service{} // every case fails before the store is touched
	orgID := "00000000-0000-4000-8000-000000000001"
	for _, tt := range []struct {
		name string
		n    org.NewUser
		want []string
	}{
		{"bad email", org.NewUser{Email: "ana", Name: "Ana"}, []string{"email"}},
		{"bad role", org.NewUser{Email: "ana@x.test", Name: "Ana", Role: "owner"}, []string{"role"}},
		{"long name", org.NewUser{Email: "ana@x.test", Name: strings.Repeat("a", 101)}, []string{"name"}},
		{"control character", org.NewUser{Email: "ana@x.test", Name: "An\ta"}, []string{"name"}},
		{"weak password", org.NewUser{Email: "ana@x.test", Name: "Ana", Password: "short"}, []string{"password"}},
		{"everything at once", org.NewUser{Email: "@", Name: strings.Repeat("n", 200), Role: "root"}, []string{"email", "role", "name"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sv.CreateUser(ctx, audit.Actor{Kind: "system", ID: "test"}, orgID, tt.n)
			if code(err) != "invalid_user" || !slices.Equal(fields(err), tt.want) {
				t.Fatalf("got %v (fields %v), want invalid_user about %v", err, fields(err), tt.want)
			}
		})
	}
}

func TestUpdateContact(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sv := newService(t, d)
			by := audit.Actor{Kind: "system", ID: "test"}
			o, err := sv.Create(ctx, by, org.NewOrg{Name: "Acme", AdminEmail: "ana@acme.test", AdminName: "Ana"})
			if err != nil {
				t.Fatal(err)
			}
			u, err := sv.UpdateContact(ctx, by, o.OrgID, "Ana@Acme.test", org.Contact{
				Name: ptr("Ana Lima"), Timezone: ptr("Europe/Lisbon"), QuietHours: ptr("23:00-07:00"), Groups: ptr([]string{"oncall", " dba", "oncall"}),
				Addresses: addrs("phone", " +351912345678 ", "slack", "U012AB3CD", "telegram", "-1001234"),
			})
			if err != nil {
				t.Fatal(err)
			}
			// An address an operator sets counts as verified: they vouch for it.
			for _, c := range u.Contacts {
				if c.VerifiedAt == nil || c.VerifiedAt.IsZero() {
					t.Errorf("contact %s set by an operator is not verified", c.Kind)
				}
			}
			want := store.User{Name: "Ana Lima", Timezone: "Europe/Lisbon", QuietHours: "23:00-07:00", Groups: []string{"oncall", "dba"}}
			wantAddr := map[string]string{"phone": "+351912345678", "slack": "U012AB3CD", "telegram": "-1001234"}
			check := func(what string, got store.User, want store.User) {
				t.Helper()
				for kind, addr := range wantAddr {
					if address(got, kind) != addr {
						t.Fatalf("%s: %s is %q, want %q", what, kind, address(got, kind), addr)
					}
				}
				if got.Name != want.Name || got.Timezone != want.Timezone || len(got.Contacts) != len(wantAddr) ||
					got.QuietHours != want.QuietHours || !slices.Equal(got.Groups, want.Groups) {
					t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
				}
				if got.Role != store.RoleAdmin || !got.Active || got.Email != "ana@acme.test" {
					t.Fatalf("%s: role, active flag or email changed: %+v", what, got)
				}
			}
			check("returned", u, want)
			stored := func() store.User {
				var got store.User
				if err := sv.Store.InOrg(ctx, o.OrgID, func(tx store.OrgTx) (err error) { got, err = tx.UserByID(ctx, o.AdminID); return err }); err != nil {
					t.Fatal(err)
				}
				return got
			}
			check("stored", stored(), want)

			// nil leaves a setting, "" (or an empty list) clears it; a cleared time zone is UTC.
			if _, err := sv.UpdateContact(ctx, by, o.OrgID, "ana@acme.test", org.Contact{Addresses: addrs("phone", ""), QuietHours: ptr(""),
				Groups: ptr([]string{}), Timezone: ptr("")}); err != nil {
				t.Fatal(err)
			}
			delete(wantAddr, "phone")
			want.QuietHours, want.Groups, want.Timezone = "", nil, "UTC"
			check("after clearing", stored(), want)

			// A rejected change changes nothing, not even its valid fields.
			if _, err := sv.UpdateContact(ctx, by, o.OrgID, "ana@acme.test", org.Contact{Name: ptr("Ana L."), Addresses: addrs("phone", "12345")}); code(err) != "invalid_user" {
				t.Fatalf("bad phone: %v", err)
			}
			check("after a rejected change", stored(), want)

			if _, err := sv.UpdateContact(ctx, by, o.OrgID, "nobody@acme.test", org.Contact{Name: ptr("X")}); code(err) != "user_not_found" {
				t.Fatalf("unknown person: %v", err)
			}
			// Another organization cannot reach Ana by her email.
			other, err := sv.Create(ctx, by, org.NewOrg{Name: "Other", AdminEmail: "boss@other.test", Password: "a long enough passphrase"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sv.UpdateContact(ctx, by, other.OrgID, "ana@acme.test", org.Contact{Name: ptr("Mallory")}); code(err) != "user_not_found" {
				t.Fatalf("another org's person: %v", err)
			}
			if _, err := sv.UpdateContact(ctx, by, "00000000-0000-4000-8000-000000000001", "ana@acme.test", org.Contact{Name: ptr("X")}); code(err) != "org_not_found" {
				t.Fatalf("unknown org: %v", err)
			}
			check("after the refused changes", stored(), want)
			// Contact changes are not audited: the log has no event for them and must never hold a phone number.
			if got := strings.Join(events(t, sv, o.OrgID), " "); got != "org.created:org member.invited:user" {
				t.Fatalf("audit events: %s", got)
			}
		})
	}
}

func TestContactValidation(t *testing.T) {
	t.Parallel()
	sv := org.Service{Kinds: kinds} // every case fails before the store is touched
	orgID := "00000000-0000-4000-8000-000000000001"
	const phone = "+1 555 010 0199"
	for _, tt := range []struct {
		name  string
		c     org.Contact
		field string
		msg   string // a part of the message
	}{
		{"empty name", org.Contact{Name: ptr("  ")}, "name", "1 to 100 characters"},
		{"unknown zone", org.Contact{Timezone: ptr("Mars/Olympus")}, "timezone", `"Mars/Olympus" is not an IANA time zone`},
		{"local zone", org.Contact{Timezone: ptr("Local")}, "timezone", "IANA"},
		{"zone path", org.Contact{Timezone: ptr("../../etc/passwd")}, "timezone", "IANA"},
		{"phone with spaces", org.Contact{Addresses: addrs("phone", phone)}, "phone", "E.164"},
		{"phone without plus", org.Contact{Addresses: addrs("phone", "15550100199")}, "phone", "*********99"},
		{"phone too short", org.Contact{Addresses: addrs("phone", "+123456")}, "phone", "+****56"},
		{"phone too long", org.Contact{Addresses: addrs("phone", "+1234567890123456")}, "phone", "E.164"},
		{"phone leading zero", org.Contact{Addresses: addrs("phone", "+0155501001")}, "phone", "E.164"},
		{"slack lower case", org.Contact{Addresses: addrs("slack", "u012ab3cd")}, "slack_id", `"u012ab3cd" is not a Slack member id`},
		{"slack channel", org.Contact{Addresses: addrs("slack", "C012AB3CD")}, "slack_id", "Slack member id"},
		{"slack too short", org.Contact{Addresses: addrs("slack", "U1")}, "slack_id", "Slack member id"},
		{"telegram username", org.Contact{Addresses: addrs("telegram", "@ana")}, "telegram_id", "not a @username"},
		{"telegram too long", org.Contact{Addresses: addrs("telegram", strings.Repeat("9", 21))}, "telegram_id", "Telegram chat id"},
		{"quiet hours shape", org.Contact{QuietHours: ptr("10pm to 7am")}, "quiet_hours", "22:00-07:00"},
		{"quiet hours minutes", org.Contact{QuietHours: ptr("22-07")}, "quiet_hours", `"22" is not a time of day`},
		{"quiet hours hour", org.Contact{QuietHours: ptr("25:00-07:00")}, "quiet_hours", `"25:00"`},
		{"quiet hours empty span", org.Contact{QuietHours: ptr("07:00-07:00")}, "quiet_hours", "same time"},
		{"group upper case", org.Contact{Groups: ptr([]string{"oncall", "DBA"})}, "groups", `group "DBA"`},
		{"group empty", org.Contact{Groups: ptr([]string{""})}, "groups", `group ""`},
		{"group too long", org.Contact{Groups: ptr([]string{strings.Repeat("g", 64)})}, "groups", "1 to 63"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sv.UpdateContact(ctx, audit.Actor{Kind: "system", ID: "test"}, orgID, "ana@acme.test", tt.c)
			ps := org.Problems(err)
			if code(err) != "invalid_user" || len(ps) != 1 || ps[0].Field != tt.field || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("got %v (%+v), want one %s problem containing %q", err, ps, tt.field, tt.msg)
			}
			if ph := tt.c.Addresses["phone"]; ph != nil && len(*ph) > 4 && strings.Contains(err.Error(), (*ph)[:len(*ph)-2]) {
				t.Fatalf("the error shows the phone number: %v", err)
			}
		})
	}

	// A contact of a kind no channel reaches people by is refused.
	if _, err := sv.UpdateContact(ctx, audit.Actor{}, orgID, "ana@acme.test", org.Contact{Addresses: addrs("pager", "123")}); !slices.Equal(fields(err), []string{"pager"}) {
		t.Errorf("an unknown contact kind: %v", err)
	}
	if _, err := (org.Service{}).UpdateContact(ctx, audit.Actor{}, orgID, "ana@acme.test", org.Contact{Addresses: addrs("phone", "+15550100001")}); !slices.Equal(fields(err), []string{"phone"}) {
		t.Errorf("a contact with no kinds registered: %v", err)
	}

	// Valid values pass (the store then says the organization does not exist).
	real := newService(t, "sqlite")
	for _, c := range []org.Contact{
		{Addresses: addrs("phone", "+15550100001")}, {Addresses: addrs("phone", "")}, {Timezone: ptr("America/New_York")}, {Timezone: ptr("")},
		{Addresses: addrs("slack", "W0ANA")}, {Addresses: addrs("telegram", "-1001234567890")}, {QuietHours: ptr("22:00-07:00")},
		{Groups: ptr([]string{"on-call", "dba_2"})}, {Groups: ptr([]string{})},
	} {
		if _, err := real.UpdateContact(ctx, audit.Actor{}, orgID, "ana@acme.test", c); code(err) != "org_not_found" {
			t.Errorf("%+v: %v, want it accepted", c, err)
		}
	}
}

// TestContactValidationAllAtOnce: every problem is reported in one answer, and the phone number is
// never shown in full — not in the message, not in the details.
func TestContactValidationAllAtOnce(t *testing.T) {
	t.Parallel()
	const phone = "+44 20 7946 0958"
	_, err := (org.Service{Kinds: kinds}).UpdateContact(ctx, audit.Actor{}, "00000000-0000-4000-8000-000000000001", "ana@acme.test", org.Contact{
		Name: ptr(""), Timezone: ptr("Mars/Olympus"), Addresses: addrs("phone", phone, "slack", "ana", "telegram", "@ana"),
		QuietHours: ptr("late"), Groups: ptr([]string{"Ops!"}),
	})
	// Contacts come in the order their kinds are registered (as `ony admin set-user --help` lists them).
	want := []string{"name", "timezone", "slack_id", "telegram_id", "phone", "quiet_hours", "groups"}
	if got := fields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %v, want %v (%v)", got, want, err)
	}
	for _, digits := range []string{phone, "7946 0958", "79460958", "+442079460958", "0958"} {
		if strings.Contains(err.Error(), digits) {
			t.Errorf("the error shows %q of the phone number: %v", digits, err)
		}
		for _, p := range org.Problems(err) {
			if strings.Contains(p.Message, digits) {
				t.Errorf("the %s problem shows %q: %s", p.Field, digits, p.Message)
			}
		}
	}
	if !strings.Contains(err.Error(), "phone: "+voice.MaskPhone(phone)) {
		t.Errorf("the phone problem does not show the masked number %s: %v", voice.MaskPhone(phone), err)
	}
}
