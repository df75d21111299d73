package config

import (
	"strings"
	"testing"
)

// TestOIDCValidation (issue 13, oidc): each mistake in the oidc section is reported at its own path,
// all at once; a complete section loads.
func TestOIDCValidation(t *testing.T) {
	t.Parallel()
	ok := "oidc: {issuer: 'https://sso.example/realms/x', client_id: ony}\n"
	for _, c := range []struct {
		name string
		yaml string
		want map[string]string // path → message substring; nil = loads
	}{
		{"off", "oidc: {}", nil},
		{"minimal", ok, nil},
		{"http on localhost", "oidc: {issuer: 'http://127.0.0.1:5556/dex', client_id: ony}", nil},
		{"everything", `oidc:
  issuer: https://sso.example
  client_id: ony
  client_secret: s
  redirect_url: https://ony.example/console/sso/callback
  roles: {admins: admin, devs: member, all: viewer}
  default_role: viewer
  allow_unknown: true
  org: Acme`, nil},
		{"allow_unknown with roles, no default", "oidc: {issuer: 'https://sso.example', client_id: ony, allow_unknown: true, roles: {a: admin}}", nil},
		{"client id without issuer", "oidc: {client_id: ony, client_secret: s}", map[string]string{
			"oidc.client_id": "needs oidc.issuer", "oidc.client_secret": "needs oidc.issuer"}},
		{"issuer without client id", "oidc: {issuer: 'https://sso.example'}", map[string]string{"oidc.client_id": "must be set"}},
		{"plain http issuer", "oidc: {issuer: 'http://sso.example', client_id: ony}", map[string]string{"oidc.issuer": "must use https"}},
		{"relative issuer", "oidc: {issuer: sso.example, client_id: ony}", map[string]string{"oidc.issuer": "absolute URL"}},
		{"bad redirect", "oidc: {issuer: 'https://sso.example', client_id: ony, redirect_url: /cb}", map[string]string{"oidc.redirect_url": "absolute URL"}},
		{"bad roles and default", `oidc:
  issuer: https://sso.example
  client_id: ony
  roles: {admins: owner, devs: member, ops: Admin}
  default_role: root
  scopes: [openid, "email profile"]
  claims: {email: ""}`, map[string]string{
			`oidc.roles["admins"]`: "must be admin, member or viewer",
			`oidc.roles["ops"]`:    "must be admin, member or viewer",
			"oidc.default_role":    "must be admin, member, viewer or empty",
			"oidc.scopes[1]":       "one scope name",
			"oidc.claims.email":    "must not be empty",
		}},
		{"roles not a mapping", ok[:len(ok)-2] + ", roles: [admins]}", map[string]string{"oidc.roles": "mapping"}},
		{"allow_unknown needs a role", "oidc: {issuer: 'https://sso.example', client_id: ony, allow_unknown: true}",
			map[string]string{"oidc.default_role": "must be set when oidc.allow_unknown"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.want == nil {
				mustLoad(t, c.yaml, nil)
				return
			}
			_, list := loadErrors(t, c.yaml, nil)
			if len(list) != len(c.want) {
				t.Errorf("got %d errors, want %d: %v", len(list), len(c.want), list)
			}
			for path, msg := range c.want {
				fe := findError(t, list, path)
				if !strings.Contains(fe.Msg, msg) {
					t.Errorf("%s: %q, want %q", path, fe.Msg, msg)
				}
				if fe.Line == 0 {
					t.Errorf("%s: not placed at a line: %s", path, fe.Pos())
				}
			}
		})
	}
}

func TestOIDCEnv(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "", map[string]string{
		"ONY_OIDC_ISSUER": "https://sso.example", "ONY_OIDC_CLIENT_ID": "ony", "ONY_OIDC_ROLES": "admins=admin\ndevs=member",
		"ONY_OIDC_ALLOW_UNKNOWN": "true", "ONY_OIDC_DEFAULT_ROLE": "viewer", "ONY_OIDC_ORG": "Acme",
	})
	if !c.OIDC.Enabled() || c.OIDC.Roles["devs"] != "member" || !c.OIDC.AllowUnknown || c.OIDC.Org != "Acme" {
		t.Errorf("%+v", c.OIDC)
	}
	if got := c.OIDC.Redirect("https://ony.example/base/"); got != "https://ony.example/base/console/sso/callback" {
		t.Errorf("Redirect = %q", got)
	}
	_, list := loadErrors(t, "", map[string]string{"ONY_OIDC_ISSUER": "https://sso.example", "ONY_OIDC_CLIENT_ID": "ony", "ONY_OIDC_ROLES": "admins"})
	if fe := findError(t, list, "oidc.roles"); fe.File != "ONY_OIDC_ROLES" || !strings.Contains(fe.Msg, "key=value") {
		t.Errorf("%v", fe)
	}
	if u := UnknownEnv([]string{"ONY_OIDC_CLIENT_SECRET_FILE=/x", "ONY_OIDC_ISSUER=x", "ONY_OIDC_ROLES=a=b"}); len(u) != 0 {
		t.Errorf("unknown: %v", u)
	}
}
