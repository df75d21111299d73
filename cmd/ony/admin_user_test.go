package main

// Tests of `ony admin create-user` and `ony admin set-user`, run in process through run (the same
// dispatch as the binary) against a SQLite data directory named by a configuration file.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/store"
)

// adminCLI runs `ony admin ...` in process on one data directory.
type adminCLI struct {
	t       *testing.T
	cfgPath string
	dataDir string
}

func newAdminCLI(t *testing.T) *adminCLI {
	t.Helper()
	dir := t.TempDir()
	c := &adminCLI{t: t, cfgPath: filepath.Join(dir, "ony.yaml"), dataDir: filepath.Join(dir, "data")}
	if err := os.WriteFile(c.cfgPath, []byte("data_dir: "+c.dataDir+"\nlog:\n  level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The admin commands work on an instance; only serve and migrate create one.
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--config", c.cfgPath}, strings.NewReader(""), io.Discard, &stderr); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, stderr.String())
	}
	return c
}

// run runs one admin command and returns its output and exit status. Like runOny, it takes a slot
// in heavy: creating an organization or a person hashes a password, slow under -race.
func (c *adminCLI) run(args ...string) result {
	c.t.Helper()
	heavy <- struct{}{}
	defer func() { <-heavy }()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append(append([]string{"admin"}, args...), "--config", c.cfgPath), strings.NewReader(""), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// user reads a person straight from the database.
func (c *adminCLI) user(email string) store.User {
	c.t.Helper()
	cfg, err := config.Load(c.cfgPath, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := app.OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer s.Close()
	var u store.User
	if err := s.InSystem(context.Background(), func(tx store.SystemTx) (err error) { u, err = tx.UserByEmail(context.Background(), email); return err }); err != nil {
		c.t.Fatalf("read %s: %v", email, err)
	}
	return u
}

// auditTypes lists an organization's audit events as type:role.
func (c *adminCLI) auditTypes(orgID string) []string {
	c.t.Helper()
	cfg, err := config.Load(c.cfgPath, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := app.OpenStore(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer s.Close()
	var out []string
	// Whatever the commands queued: a log with no keys can sequence, not sign.
	if _, err := audit.New(nil, "", nil, nil).Sequence(context.Background(), s, orgID); err != nil {
		c.t.Fatal(err)
	}
	err = s.InOrg(context.Background(), orgID, func(tx store.OrgTx) error {
		leaves, err := tx.AuditLeaves(context.Background(), 0, 100)
		for _, l := range leaves {
			e, err := audit.Decode(l.Data)
			if err != nil {
				return err
			}
			role := ""
			if e.Details != nil {
				role = e.Details.Role
			}
			out = append(out, string(e.Type)+":"+role)
		}
		return err
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *adminCLI) createOrg() string {
	c.t.Helper()
	r := c.run("create-org", "--name", "Acme", "--admin-email", "boss@acme.test", "--json")
	var out map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["org_id"] == "" {
		c.t.Fatalf("create-org: %s", r)
	}
	return out["org_id"]
}

var reCreatedUser = regexp.MustCompile(`^created (member|admin|viewer) (.+) <(\S+)> \(user ([0-9a-f-]{36})\); password \(shown once\): (\S+)\n$`)

func TestAdminCreateUser(t *testing.T) {
	t.Parallel()
	c := newAdminCLI(t)
	orgID := c.createOrg()

	r := c.run("create-user", "--org", orgID, "--email", "Ana@Acme.test", "--name", "Ana Lima")
	m := reCreatedUser.FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("create-user: want one line like %q\n%s", reCreatedUser, r)
	}
	if m[1] != "member" || m[2] != "Ana Lima" || m[3] != "ana@acme.test" {
		t.Fatalf("create-user printed %q", r.stdout)
	}
	u := c.user("ana@acme.test")
	if u.ID != m[4] || u.Role != store.RoleMember || u.Name != "Ana Lima" || u.OrgID != orgID || !u.Active {
		t.Fatalf("stored %+v", u)
	}
	heavy <- struct{}{}
	ok, err := auth.VerifyPassword(u.PasswordHash, m[5])
	<-heavy
	if !ok || err != nil {
		t.Fatalf("the printed password does not match the stored hash (%v)", err)
	}
	mustNotContain(t, "create-user's stderr", r.stderr, m[5])

	r = c.run("create-user", "--org", orgID, "--email", "ben@acme.test", "--name", "Ben", "--role", "viewer", "--json")
	var js map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &js) != nil {
		t.Fatalf("create-user --json: %s", r)
	}
	if js["email"] != "ben@acme.test" || js["role"] != "viewer" || js["name"] != "Ben" || js["user_id"] == "" || js["password"] == "" {
		t.Fatalf("create-user --json printed %v", js)
	}
	if got, want := c.auditTypes(orgID), []string{"org.created:", "member.invited:admin", "member.invited:member", "member.invited:viewer"}; !slices.Equal(got, want) {
		t.Fatalf("audit events %v, want %v", got, want)
	}

	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"taken email", []string{"--org", orgID, "--email", "ana@acme.test", "--name", "Ana 2"}, 1,
			[]string{"ony: a user with this email already exists\n"}},
		{"unknown org", []string{"--org", "00000000-0000-4000-8000-000000000001", "--email", "x@acme.test", "--name", "X"}, 1,
			[]string{"ony: no such organization\n"}},
		{"every problem at once", []string{"--org", orgID, "--email", "not-an-email", "--name", "X", "--role", "owner"}, 1,
			[]string{"--email: \"not-an-email\" is not an email address\n", "--role: \"owner\" is not a role; use admin, member or viewer\n",
				"ony: 2 problems; nothing was changed\n"}},
		{"missing name", []string{"--org", orgID, "--email", "x@acme.test"}, 2, []string{"ony: --org, --email and --name are required\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(append([]string{"create-user"}, tt.args...)...)
			if r.code != tt.code || r.stdout != "" {
				t.Fatalf("want exit %d and no stdout:\n%s", tt.code, r)
			}
			mustContain(t, "stderr", r.stderr, tt.stderr...)
		})
	}
}

func TestAdminSetUser(t *testing.T) {
	t.Parallel()
	c := newAdminCLI(t)
	orgID := c.createOrg()
	set := func(args ...string) result {
		t.Helper()
		return c.run(append([]string{"set-user", "--org", orgID, "--email", "boss@acme.test"}, args...)...)
	}

	r := set("--name", "Ana Lima", "--timezone", "Europe/Lisbon", "--phone", "+351912345678", "--slack-id", "U012AB3CD",
		"--telegram-id", "1001", "--quiet-hours", "23:00-07:00", "--groups", "oncall, dba,")
	want := `updated boss@acme.test: name "Ana Lima", admin, timezone Europe/Lisbon, slack U012AB3CD, telegram 1001, phone +3•••••••5678, quiet hours 23:00-07:00, groups oncall,dba` + "\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("set-user: want stdout %q\n%s", want, r)
	}
	mustNotContain(t, "set-user's output", r.stdout+r.stderr, "+351912345678")
	u := c.user("boss@acme.test")
	if u.Name != "Ana Lima" || u.Timezone != "Europe/Lisbon" || contact(u, "phone") != "+351912345678" || contact(u, "slack") != "U012AB3CD" ||
		contact(u, "telegram") != "1001" || u.QuietHours != "23:00-07:00" || !slices.Equal(u.Groups, []string{"oncall", "dba"}) || u.Role != store.RoleAdmin {
		t.Fatalf("stored %+v", u)
	}

	// A flag given as "" clears its setting; flags not given leave theirs.
	r = set("--quiet-hours", "", "--groups", "", "--timezone", "")
	want = `updated boss@acme.test: name "Ana Lima", admin, timezone UTC, slack U012AB3CD, telegram 1001, phone +3•••••••5678, quiet hours none, groups none` + "\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("set-user clearing: want stdout %q\n%s", want, r)
	}
	u = c.user("boss@acme.test")
	if u.QuietHours != "" || len(u.Groups) != 0 || u.Timezone != "UTC" || contact(u, "phone") != "+351912345678" || contact(u, "slack") != "U012AB3CD" {
		t.Fatalf("after clearing: %+v", u)
	}

	for _, tt := range []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"phone", []string{"--phone", "+351 912 345 678"}, []string{"--phone: +*************78 is not a phone number in E.164 form"}},
		{"phone without plus", []string{"--phone", "00351912345678"}, []string{"--phone: ************78 is not"}},
		{"timezone", []string{"--timezone", "Lisbon"}, []string{`--timezone: "Lisbon" is not an IANA time zone name`}},
		{"slack", []string{"--slack-id", "@ana"}, []string{`--slack-id: "@ana" is not a Slack member id`}},
		{"telegram", []string{"--telegram-id", "@ana"}, []string{`--telegram-id: "@ana" is not a Telegram chat id`}},
		{"quiet hours", []string{"--quiet-hours", "22:00-7"}, []string{`--quiet-hours: "7" is not a time of day like "07:30"`}},
		{"groups", []string{"--groups", "oncall,On Call"}, []string{`--groups: group "On Call" must be 1 to 63 lower-case letters`}},
		{"name", []string{"--name", " "}, []string{"--name: a name is 1 to 100 characters"}},
		{"every problem at once", []string{"--name", "", "--timezone", "Mars/Olympus", "--phone", "+1 (555) 010-0199", "--slack-id", "ana",
			"--telegram-id", "ana", "--quiet-hours", "late", "--groups", "A,b"},
			[]string{"\n--name: ", "\n--timezone: ", "\n--phone: ", "\n--slack-id: ", "\n--telegram-id: ", "\n--quiet-hours: ", "\n--groups: ",
				"ony: 7 problems; nothing was changed\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := set(tt.args...)
			if r.code != 1 || r.stdout != "" {
				t.Fatalf("want exit 1 and no stdout:\n%s", r)
			}
			mustContain(t, "stderr", "\n"+r.stderr, tt.stderr...)
			for _, a := range tt.args {
				if strings.Contains(a, "555") || strings.Contains(a, "351") {
					for _, part := range []string{a, strings.ReplaceAll(a, " ", ""), "912 345", "010-01"} {
						mustNotContain(t, "stderr", r.stderr, part)
					}
				}
			}
			// One line per problem, then the summary.
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if n := len(tt.stderr); n > 1 && len(lines) != n {
				t.Errorf("stderr has %d lines, want %d:\n%s", len(lines), n, r.stderr)
			}
		})
	}
	if u2 := c.user("boss@acme.test"); u2.Name != u.Name || contact(u2, "phone") != contact(u, "phone") || u2.Timezone != u.Timezone {
		t.Fatalf("a rejected set-user changed the person: %+v", u2)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"nothing to change", []string{"--org", orgID, "--email", "boss@acme.test"}, 2, "ony: nothing to change"},
		{"no email", []string{"--org", orgID, "--name", "X"}, 2, "ony: --org and --email are required"},
		{"unknown person", []string{"--org", orgID, "--email", "nobody@acme.test", "--name", "X"}, 1, "ony: no person with this email in the organization"},
		{"unknown org", []string{"--org", "00000000-0000-4000-8000-000000000001", "--email", "boss@acme.test", "--name", "X"}, 1, "ony: no such organization"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(append([]string{"set-user"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Fatalf("want exit %d and %q:\n%s", tt.code, tt.msg, r)
			}
		})
	}
}

// contact is u's address of a contact kind, or "".
func contact(u store.User, kind string) string {
	c, _ := u.Contact(kind)
	return c.Address
}
