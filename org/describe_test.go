package org_test

import (
	"strings"
	"testing"

	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
)

// TestDescribeUser checks the one line a person is shown as: every contact kind named, each address
// masked as its kind masks it, and the defaults spelt out.
func TestDescribeUser(t *testing.T) {
	t.Parallel()
	kinds := app.BuiltinKinds()
	for _, tc := range []struct {
		name      string
		u         store.User
		want, not []string
	}{
		{"unset", store.User{Name: "Ben", Role: store.RoleMember},
			[]string{`name "Ben", member, timezone UTC, `, "phone none", ", quiet hours none, groups none"}, nil},
		{"set", store.User{Name: "Ana", Role: store.RoleAdmin, Timezone: "Europe/Lisbon", QuietHours: "23:00-07:00",
			Groups: []string{"oncall", "dba"}, Contacts: []store.Contact{{Kind: "phone", Address: "+15550100001"}}},
			[]string{`name "Ana", admin, timezone Europe/Lisbon, `, "phone +1••••••0001", "quiet hours 23:00-07:00, groups oncall,dba"},
			[]string{"+15550100001"}},
	} {
		got := org.DescribeUser(tc.u, kinds)
		for _, ck := range kinds.Contacts() {
			if !strings.Contains(got, ck.Name+" ") {
				t.Errorf("%s: %q does not name the contact %s", tc.name, got, ck.Name)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q shows %q", tc.name, got, n)
			}
		}
	}
}
