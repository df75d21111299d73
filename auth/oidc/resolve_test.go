package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

const orgA, orgB = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"

// fakeDir is an in-memory Directory: users by email, open invites by email, and a log of calls.
type fakeDir struct {
	users   map[string]store.User
	invites map[string]store.Role
	created []store.User
	roleSet []store.Role
	setErr  error
}

func (f *fakeDir) OrgID(_ context.Context, ref string) (string, error) {
	if ref == "" || ref == "Acme" || ref == orgA {
		return orgA, nil
	}
	return "", errors.New("no such org")
}

func (f *fakeDir) UserByEmail(_ context.Context, email string) (store.User, error) {
	if u, ok := f.users[email]; ok {
		return u, nil
	}
	return store.User{}, store.ErrNotFound
}

func (f *fakeDir) JoinInvited(_ context.Context, email, name string) (store.User, bool, error) {
	role, ok := f.invites[email]
	if !ok {
		return store.User{}, false, nil
	}
	delete(f.invites, email)
	u := store.User{OrgID: orgA, ID: "joined-" + email, Email: email, Name: name, Role: role, Active: true}
	f.users[email] = u
	return u, true, nil
}

func (f *fakeDir) CreateMember(_ context.Context, orgID, email, name string, role store.Role) (store.User, error) {
	u := store.User{OrgID: orgID, ID: "new-" + email, Email: email, Name: name, Role: role, Active: true}
	f.created = append(f.created, u)
	f.users[email] = u
	return u, nil
}

func (f *fakeDir) SetRole(_ context.Context, orgID, userID string, role store.Role) error {
	if f.setErr != nil {
		return f.setErr
	}
	f.roleSet = append(f.roleSet, role)
	return nil
}

func newFake() *fakeDir {
	return &fakeDir{
		users: map[string]store.User{
			"ann@example.com":  {OrgID: orgA, ID: "ann", Email: "ann@example.com", Role: store.RoleMember, Active: true},
			"gone@example.com": {OrgID: orgA, ID: "gone", Email: "gone@example.com", Role: store.RoleAdmin, Active: false},
			"bob@other.test":   {OrgID: orgB, ID: "bob", Email: "bob@other.test", Role: store.RoleAdmin, Active: true},
		},
		invites: map[string]store.Role{"inv@example.com": store.RoleMember},
	}
}

func TestRoleFor(t *testing.T) {
	t.Parallel()
	roles := map[string]store.Role{"ony-admins": store.RoleAdmin, "devs": store.RoleMember, "watchers": store.RoleViewer}
	for _, c := range []struct {
		name    string
		roles   map[string]store.Role
		def     store.Role
		groups  []string
		want    store.Role
		mapping bool
	}{
		{"no mapping: default", nil, store.RoleViewer, []string{"ony-admins"}, store.RoleViewer, false},
		{"no mapping, no default", nil, "", nil, "", false},
		{"one group", roles, "", []string{"devs"}, store.RoleMember, true},
		{"highest wins", roles, "", []string{"watchers", "ony-admins", "devs"}, store.RoleAdmin, true},
		{"highest wins, other order", roles, "", []string{"devs", "watchers"}, store.RoleMember, true},
		{"unmapped groups: default", roles, store.RoleViewer, []string{"sales"}, store.RoleViewer, true},
		{"unmapped groups, no default: refused", roles, "", []string{"sales"}, "", true},
		{"no groups: default", roles, store.RoleMember, nil, store.RoleMember, true},
		{"mapped beats a higher default", roles, store.RoleAdmin, []string{"watchers"}, store.RoleViewer, true},
		{"names are exact", roles, "", []string{"ONY-ADMINS"}, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewMapper(Config{Roles: c.roles, DefaultRole: c.def}, newFake())
			if err != nil {
				t.Fatal(err)
			}
			got, mapped := m.RoleFor(c.groups)
			if got != c.want || mapped != c.mapping {
				t.Errorf("RoleFor(%v) = %q, %t; want %q, %t", c.groups, got, mapped, c.want, c.mapping)
			}
		})
	}
}

func TestNewMapperRefusesBadRoles(t *testing.T) {
	t.Parallel()
	if _, err := NewMapper(Config{Roles: map[string]store.Role{"g": "owner"}}, newFake()); err == nil {
		t.Error("unknown role accepted")
	}
	if _, err := NewMapper(Config{DefaultRole: "root"}, newFake()); err == nil {
		t.Error("unknown default role accepted")
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	admins := map[string]store.Role{"ony-admins": store.RoleAdmin, "devs": store.RoleMember}
	for _, c := range []struct {
		name     string
		cfg      Config
		id       Identity
		wantCode string // problem code when refused
		wantID   string
		wantRole store.Role
		created  bool
		roleSet  bool
	}{
		{name: "member", id: Identity{Email: "ann@example.com"}, wantID: "ann", wantRole: store.RoleMember},
		{name: "member, email case", id: Identity{Email: " Ann@Example.COM "}, wantID: "ann", wantRole: store.RoleMember},
		{name: "member promoted by groups", cfg: Config{Roles: admins}, id: Identity{Email: "ann@example.com", Groups: []string{"ony-admins"}},
			wantID: "ann", wantRole: store.RoleAdmin, roleSet: true},
		{name: "member, groups map to the same role", cfg: Config{Roles: admins}, id: Identity{Email: "ann@example.com", Groups: []string{"devs"}},
			wantID: "ann", wantRole: store.RoleMember},
		{name: "member, groups map to nothing, no default", cfg: Config{Roles: admins}, id: Identity{Email: "ann@example.com", Groups: []string{"sales"}},
			wantCode: "sso_no_role"},
		{name: "member, groups map to nothing, default viewer", cfg: Config{Roles: admins, DefaultRole: store.RoleViewer},
			id: Identity{Email: "ann@example.com", Groups: []string{"sales"}}, wantID: "ann", wantRole: store.RoleViewer, roleSet: true},
		{name: "deactivated", id: Identity{Email: "gone@example.com"}, wantCode: "sso_deactivated"},
		{name: "deactivated, even with allow_unknown", cfg: Config{AllowUnknown: true, DefaultRole: store.RoleMember},
			id: Identity{Email: "gone@example.com"}, wantCode: "sso_deactivated"},
		{name: "member of another org", id: Identity{Email: "bob@other.test"}, wantCode: "sso_unknown_user"},
		{name: "member of another org, allow_unknown", cfg: Config{AllowUnknown: true, DefaultRole: store.RoleMember},
			id: Identity{Email: "bob@other.test"}, wantCode: "sso_unknown_user"},
		{name: "unknown refused", id: Identity{Email: "eve@example.com"}, wantCode: "sso_unknown_user"},
		{name: "unknown allowed", cfg: Config{AllowUnknown: true, DefaultRole: store.RoleMember},
			id: Identity{Email: "eve@example.com", Name: "Eve"}, wantID: "new-eve@example.com", wantRole: store.RoleMember, created: true},
		{name: "unknown allowed, role from groups", cfg: Config{AllowUnknown: true, Roles: admins, DefaultRole: store.RoleViewer},
			id: Identity{Email: "eve@example.com", Groups: []string{"devs"}}, wantID: "new-eve@example.com", wantRole: store.RoleMember, created: true},
		{name: "unknown allowed, groups map to nothing, no default", cfg: Config{AllowUnknown: true, Roles: admins},
			id: Identity{Email: "eve@example.com", Groups: []string{"x"}}, wantCode: "sso_no_role"},
		{name: "invited joins", id: Identity{Email: "inv@example.com", Name: "Ivy"}, wantID: "joined-inv@example.com", wantRole: store.RoleMember},
		{name: "invited joins, groups decide the role", cfg: Config{Roles: admins}, id: Identity{Email: "inv@example.com", Groups: []string{"ony-admins"}},
			wantID: "joined-inv@example.com", wantRole: store.RoleAdmin, roleSet: true},
		{name: "configured org by name", cfg: Config{Org: "Acme"}, id: Identity{Email: "ann@example.com"}, wantID: "ann", wantRole: store.RoleMember},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := newFake()
			m, err := NewMapper(c.cfg, dir)
			if err != nil {
				t.Fatal(err)
			}
			u, err := m.Resolve(context.Background(), c.id)
			if c.wantCode != "" {
				p, ok := problem.As(err)
				if !ok || p.Code != c.wantCode || p.Kind != problem.Forbidden {
					t.Fatalf("err = %v, want %s", err, c.wantCode)
				}
				if len(dir.created) > 0 || len(dir.roleSet) > 0 {
					t.Errorf("refused yet changed the directory: %v %v", dir.created, dir.roleSet)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != c.wantID || u.Role != c.wantRole {
				t.Errorf("got %s as %s, want %s as %s", u.ID, u.Role, c.wantID, c.wantRole)
			}
			if (len(dir.created) == 1) != c.created {
				t.Errorf("created = %v", dir.created)
			}
			if (len(dir.roleSet) == 1) != c.roleSet {
				t.Errorf("role set = %v", dir.roleSet)
			}
		})
	}
}

func TestResolveNameDefaultsToEmail(t *testing.T) {
	t.Parallel()
	dir := newFake()
	m, _ := NewMapper(Config{AllowUnknown: true, DefaultRole: store.RoleViewer}, dir)
	u, err := m.Resolve(context.Background(), Identity{Email: "zed@example.com"})
	if err != nil || u.Name != "zed" || u.Role != store.RoleViewer {
		t.Fatalf("%+v %v", u, err)
	}
	long := strings.Repeat("é", 150)
	u, err = m.Resolve(context.Background(), Identity{Email: "long@example.com", Name: long})
	if err != nil || u.Name != strings.Repeat("é", maxNameRunes) {
		t.Fatalf("a long name is not cut to the member limit: %q %v", u.Name, err)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	dir := newFake()
	dir.setErr = problem.New(problem.Conflict, "last_admin", "x")
	m, _ := NewMapper(Config{Roles: map[string]store.Role{"v": store.RoleViewer}}, dir)
	if _, err := m.Resolve(context.Background(), Identity{Email: "ann@example.com", Groups: []string{"v"}}); err == nil {
		t.Error("a failed role change signed the person in with the old role")
	}
	m, _ = NewMapper(Config{Org: "nope"}, newFake())
	if _, err := m.Resolve(context.Background(), Identity{Email: "ann@example.com"}); err == nil {
		t.Error("unknown org accepted")
	}
}
