package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/oidc"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// TestSSODirectory (issue 13, oidc): the store-backed directory finds the SSO organization by name or
// id (or as the only one), finds members, and creates one through org.Service for allow_unknown; on
// both dialects.
func TestSSODirectory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
			if err != nil {
				t.Fatal(err)
			}
			sv := org.Service{Store: testdb.Open(t, d), Audit: audit.New(keys, "ony-test", nil, nil), Kinds: app.BuiltinKinds()}
			by := audit.Actor{Kind: "system", ID: "test"}
			acme, err := sv.Create(ctx, by, org.NewOrg{Name: "Acme", AdminEmail: "ana@acme.test"})
			if err != nil {
				t.Fatal(err)
			}
			dir := app.SSODirectory{Store: sv.Store, Org: sv}
			if id, err := dir.OrgID(ctx, ""); err != nil || id != acme.OrgID {
				t.Fatalf("the only org: %q %v", id, err)
			}
			_, err = sv.Create(ctx, by, org.NewOrg{Name: "Other", AdminEmail: "oz@other.test"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dir.OrgID(ctx, ""); err == nil {
				t.Error("empty oidc.org accepted with two organizations")
			}
			for _, ref := range []string{"Acme", acme.OrgID} {
				if id, err := dir.OrgID(ctx, ref); err != nil || id != acme.OrgID {
					t.Errorf("OrgID(%q) = %q, %v", ref, id, err)
				}
			}
			if _, err := dir.OrgID(ctx, "acme"); err == nil {
				t.Error("names match exactly")
			}

			m, err := oidc.NewMapper(oidc.Config{Org: "Acme", AllowUnknown: true, DefaultRole: store.RoleViewer}, dir)
			if err != nil {
				t.Fatal(err)
			}
			u, err := m.Resolve(ctx, oidc.Identity{Email: "ana@acme.test"})
			if err != nil || u.ID != acme.AdminID || u.Role != store.RoleAdmin {
				t.Fatalf("existing admin: %+v %v", u, err)
			}
			u, err = m.Resolve(ctx, oidc.Identity{Email: "new@acme.test", Name: "New Person"})
			if err != nil || u.OrgID != acme.OrgID || u.Role != store.RoleViewer || u.Name != "New Person" || !u.Active {
				t.Fatalf("created: %+v %v", u, err)
			}
			again, err := m.Resolve(ctx, oidc.Identity{Email: "new@acme.test"})
			if err != nil || again.ID != u.ID {
				t.Fatalf("second sign-in: %+v %v", again, err)
			}
			_, err = m.Resolve(ctx, oidc.Identity{Email: "oz@other.test"})
			if p, ok := problem.As(err); !ok || p.Code != "sso_unknown_user" {
				t.Errorf("member of another org: %v", err)
			}
			// Without the team service, roles from groups cannot change an existing member.
			m, _ = oidc.NewMapper(oidc.Config{Org: "Acme", Roles: map[string]store.Role{"g": store.RoleMember}}, dir)
			if _, err := m.Resolve(ctx, oidc.Identity{Email: "new@acme.test", Groups: []string{"g"}}); err == nil {
				t.Error("role change without SetRole succeeded")
			}
			if _, err := dir.UserByEmail(ctx, "nobody@acme.test"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("unknown email: %v", err)
			}
		})
	}
}
