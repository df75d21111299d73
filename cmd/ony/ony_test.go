package main

// End-to-end tests of the real `ony` binary: TestMain builds it once and every test runs it as a
// subprocess with a clean environment, its own data directory or PostgreSQL schema and its own port.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testredis"
)

// Scenario 1: the quick start on SQLite, with a restart.
func TestQuickStartSQLite(t *testing.T) {
	t.Parallel()
	quickStart(t, map[string]string{"ONY_DATA_DIR": t.TempDir()}, true)
}

// Scenario 2: the quick start on PostgreSQL, with Redis coordination (the multi-instance setup; the
// SQLite run covers in-process coordination).
func TestQuickStartPostgres(t *testing.T) {
	t.Parallel()
	quickStart(t, map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_DATABASE_URL": testdb.PostgresURL(t),
		"ONY_REDIS_URL": testredis.URL(t), "ONY_REDIS_PREFIX": testredis.Prefix(t)}, false)
}

func quickStart(t *testing.T, vars map[string]string, full bool) {
	// Two starts, the first with the admin's password hashed, and a login: under -race beside the other
	// suites these took 70 s (a start of 11 s, a login of 8 s, a restart of 24 s), alone 9–11 s.
	ctx := testCtx(t, 150*time.Second)
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	if b.Email != "admin@localhost" {
		t.Errorf("admin email %q, want the default admin@localhost", b.Email)
	}

	agent := newClient(t, srv.URL, b.Token)
	h, _, err := agent.Create(ctx, client.CreateRequest{
		Action: "shell.exec", Title: "Clean build dir",
		Payload: &client.Payload{Kind: "command", Content: "make clean"}, // low risk: approved without step-up
	}, client.NewIdempotencyKey())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if h.Status != client.StatusPending {
		t.Fatalf("new handoff is %q, want pending", h.Status)
	}

	type waited struct {
		h   *client.Handoff
		err error
	}
	waitc := make(chan waited, 1)
	go func() {
		wh, err := agent.Wait(ctx, h.ID)
		waitc <- waited{wh, err}
	}()

	adminHTTP := newJarClient(t)
	admin := loginWith(t, ctx, adminHTTP, srv.URL, b.Email, b.Password)
	if full {
		// The long-poll above must still be waiting: nobody has decided yet.
		select {
		case w := <-waitc:
			t.Fatalf("wait returned before any decision: %+v, %v", w.h, w.err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	d, err := admin.Decide(ctx, h.ID, "approve", "looks fine")
	if err != nil {
		t.Fatalf("decide: %v", err)
	}
	if d.Status != client.StatusApproved {
		t.Fatalf("decided handoff is %q, want approved", d.Status)
	}
	select {
	case w := <-waitc:
		if w.err != nil {
			t.Fatalf("wait: %v", w.err)
		}
		if w.h.Status != client.StatusApproved || w.h.Decision == nil || !w.h.Decision.Approved || w.h.Decision.Option != "approve" {
			t.Fatalf("wait returned %+v (decision %+v), want approved via approve", w.h, w.h.Decision)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent's wait did not return within 10s of the decision")
	}

	srv.stop()
	logs := srv.Stderr()
	mustNotContain(t, "the server log", logs, b.Password, b.Token)
	wantDB, wantCoord := "database=sqlite", "coordination=memory"
	if vars["ONY_DATABASE_URL"] != "" {
		wantDB = "database=postgres"
	}
	if vars["ONY_REDIS_URL"] != "" {
		wantCoord = "coordination=redis"
	}
	mustContain(t, "the server log", logs, "ony listening", wantDB, wantCoord)

	// Restart on the same data: no second bootstrap, the handoff and the credentials survive.
	srv2 := startServe(t, vars)
	srv2.waitReady()
	if out := srv2.Stdout(); strings.TrimSpace(out) != "" {
		t.Errorf("the restarted server printed on stdout (bootstrap must happen once):\n%s", out)
	}
	agent2 := newClient(t, srv2.URL, b.Token)
	got, err := agent2.Get(ctx, h.ID)
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.Status != client.StatusApproved || got.Title != "Clean build dir" {
		t.Fatalf("after restart the handoff is %+v, want the approved one", got)
	}
	if full {
		// The admin's session (stored in the database) also survives the restart.
		list, err := newPersonClient(t, srv2.URL, adminHTTP).List(ctx, "", 10)
		if err != nil {
			t.Fatalf("list with the session from before the restart: %v", err)
		}
		if len(list) != 1 || list[0].ID != h.ID {
			t.Fatalf("list after restart: %+v, want the one handoff", list)
		}
	}
	srv2.stop()
	mustNotContain(t, "the restarted server's log", srv2.Stderr(), b.Password, b.Token)
}

// Scenario 3: the admin commands, run against the database of a running server.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 150*time.Second) // three real PBKDF2 logins and hashes, under -race beside other suites
	vars := map[string]string{"ONY_DATA_DIR": t.TempDir()}
	srv := startServe(t, vars)
	srv.waitReady()

	// create-org with a generated password, while the server runs on the same SQLite file.
	r := runOny(t, vars, "", "admin", "create-org", "--name", "Acme", "--admin-email", "Boss@Acme.test", "--json")
	if r.code != 0 {
		t.Fatalf("create-org: %s", r)
	}
	var created map[string]string
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&created); err != nil {
		t.Fatalf("create-org --json: %v\n%s", err, r)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("create-org --json printed more than one JSON object:\n%s", r.stdout)
	}
	if created["org_id"] == "" || created["admin_email"] != "boss@acme.test" || created["admin_password"] == "" || len(created) != 3 {
		t.Fatalf("create-org --json printed %v, want org_id, admin_email (normalised) and admin_password", created)
	}
	mustNotContain(t, "create-org's stderr", r.stderr, created["admin_password"])
	boss := login(t, ctx, srv.URL, "boss@acme.test", created["admin_password"])

	// create-org with the password on stdin: it is not printed, and it signs in.
	const pw = "a perfectly long passphrase"
	r = runOny(t, vars, pw+"\n", "admin", "create-org", "--name", "Beta", "--admin-email", "chief@beta.test", "--password-stdin", "--json")
	if r.code != 0 {
		t.Fatalf("create-org --password-stdin: %s", r)
	}
	var beta map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &beta); err != nil {
		t.Fatalf("create-org --password-stdin --json: %v\n%s", err, r)
	}
	if _, ok := beta["admin_password"]; ok || beta["org_id"] == "" {
		t.Fatalf("create-org --password-stdin printed %v, want org_id and no admin_password", beta)
	}
	mustNotContain(t, "create-org --password-stdin output", r.stdout+r.stderr, pw)
	chief := login(t, ctx, srv.URL, "chief@beta.test", pw)

	// create-device: the token works against the running server, in its own organization.
	r = runOny(t, vars, "", "admin", "create-device", "--org", beta["org_id"], "--name", "ci-runner", "--json")
	if r.code != 0 {
		t.Fatalf("create-device: %s", r)
	}
	var dev map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &dev); err != nil {
		t.Fatalf("create-device --json: %v\n%s", err, r)
	}
	if dev["device_id"] == "" || !strings.HasPrefix(dev["token"], "ony_dev_") || len(dev) != 2 {
		t.Fatalf("create-device --json printed %v, want device_id and an ony_dev_ token", dev)
	}
	mustNotContain(t, "create-device's stderr", r.stderr, dev["token"])
	agent := newClient(t, srv.URL, dev["token"])
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy", Title: "Ship it"}, "")
	if err != nil {
		t.Fatalf("create with the new device token: %v", err)
	}
	if _, err := chief.Decide(ctx, h.ID, "deny", "not today"); err != nil {
		t.Fatalf("the new org's admin decides: %v", err)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != client.StatusDenied {
		t.Fatalf("after deny: %+v, %v", got, err)
	}
	// The first org's admin cannot see the other org's handoff.
	if _, err := boss.Get(ctx, h.ID); !isAPIError(err, http.StatusNotFound) {
		t.Fatalf("another org's admin reading the handoff: %v, want 404", err)
	}

	// Plain (non-JSON) create-device: the token alone on stdout.
	r = runOny(t, vars, "", "admin", "create-device", "--org", beta["org_id"], "--name", "second")
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "ony_dev_") || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("create-device (text): %s", r)
	}

	// Bad input.
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"org without flags", "", []string{"admin", "create-org"}, 2, "--name and --admin-email are required"},
		{"org without email", "", []string{"admin", "create-org", "--name", "X"}, 2, "--name and --admin-email are required"},
		{"device without flags", "", []string{"admin", "create-device"}, 2, "--org and --name are required"},
		{"unknown flag", "", []string{"admin", "create-org", "--nope"}, 2, "flag provided but not defined"},
		{"stray argument", "", []string{"admin", "create-device", "--org", beta["org_id"], "--name", "x", "extra"}, 2, `unexpected argument "extra"`},
		{"unknown admin command", "", []string{"admin", "frobnicate"}, 2, `unknown admin command "frobnicate"`},
		{"admin without command", "", []string{"admin"}, 2, "usage: ony admin"},
		{"empty stdin", "", []string{"admin", "create-org", "--name", "X", "--admin-email", "x@x.test", "--password-stdin"}, 2, "stdin was empty"},
		{"unknown org (not a uuid)", "", []string{"admin", "create-device", "--org", "nope", "--name", "x"}, 1, "no such organization"},
		{"unknown org (uuid)", "", []string{"admin", "create-device", "--org", "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10", "--name", "x"}, 1, "no such organization"},
		{"bad email", "", []string{"admin", "create-org", "--name", "X", "--admin-email", "not-an-email"}, 1, "is not an email address"},
		{"duplicate email", "", []string{"admin", "create-org", "--name", "X", "--admin-email", "BOSS@acme.test"}, 1, "already exists"},
		{"weak password", "short\n", []string{"admin", "create-org", "--name", "X", "--admin-email", "w@x.test", "--password-stdin"}, 1, ""},
		{"bad org name", "", []string{"admin", "create-org", "--name", "   ", "--admin-email", "n@x.test"}, 1, "organization name"},
	}
	for _, c := range cases {
		r := runOny(t, vars, c.stdin, c.args...)
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.name, r.code, c.code, r)
			continue
		}
		last := lastLine(r.stderr)
		if !strings.HasPrefix(last, "ony: ") || !strings.Contains(last, c.want) {
			t.Errorf("%s: the last line of stderr is %q, want a readable \"ony: ...%s...\"\n%s", c.name, last, c.want, r)
		}
		if r.stdout != "" || strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "store: ") {
			t.Errorf("%s: want only a readable message on stderr and nothing on stdout:\n%s", c.name, r)
		}
	}
	srv.stop()
}

// Scenario 3 on PostgreSQL, shorter: a device created by the CLI beside a running server (row-level
// security applies to both) works at once, and an unknown organization is refused.
func TestAdminCreateDevicePostgres(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	vars := map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_DATABASE_URL": testdb.PostgresURL(t)}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())

	r := runOny(t, vars, "", "admin", "create-device", "--org", b.OrgID, "--name", "pg-runner", "--json")
	if r.code != 0 {
		t.Fatalf("create-device: %s", r)
	}
	var dev map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &dev); err != nil || !strings.HasPrefix(dev["token"], "ony_dev_") {
		t.Fatalf("create-device --json: %v\n%s", err, r)
	}
	agent := newClient(t, srv.URL, dev["token"])
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy", Title: "Ship it"}, "")
	if err != nil {
		t.Fatalf("create with the new device token: %v", err)
	}
	// The bootstrap agent is another device: it must not see this one's handoff.
	if _, err := newClient(t, srv.URL, b.Token).Get(ctx, h.ID); !isAPIError(err, http.StatusNotFound) {
		t.Fatalf("another device reading the handoff: %v, want 404", err)
	}
	r = runOny(t, vars, "", "admin", "create-device", "--org", "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10", "--name", "x")
	if r.code != 1 || !hasLine(r.stderr, "ony: ", "no such organization") {
		t.Fatalf("create-device for an unknown org: %s", r)
	}
	srv.stop()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// hasLine reports whether some line of s starts with prefix and contains sub.
func hasLine(s, prefix, sub string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func isAPIError(err error, status int) bool {
	var ae *client.Error
	return errors.As(err, &ae) && ae.Status == status
}

// Scenario 4: migrations, and a database newer than the binary.
func TestMigrate(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		vars := map[string]string{"ONY_DATA_DIR": dir}
		migrateTwice(t, vars, "sqlite")
		db, err := sql.Open("sqlite", filepath.Join(dir, "ony.db"))
		if err != nil {
			t.Fatal(err)
		}
		tooNew(t, db, vars)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		u := testdb.PostgresURL(t)
		vars := map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_DATABASE_URL": u}
		migrateTwice(t, vars, "postgres")
		db, err := sql.Open("pgx", testdb.SuperuserURL(u))
		if err != nil {
			t.Fatal(err)
		}
		tooNew(t, db, vars)
	})
}

func migrateTwice(t *testing.T, vars map[string]string, dialect string) {
	r := runOny(t, vars, "", "migrate")
	if r.code != 0 {
		t.Fatalf("first migrate: %s", r)
	}
	mustContain(t, "first migrate", r.stderr, "applied migration", dialect+" database is up to date")
	r = runOny(t, vars, "", "migrate")
	if r.code != 0 {
		t.Fatalf("second migrate: %s", r)
	}
	mustContain(t, "second migrate", r.stderr, dialect+" database is up to date")
	mustNotContain(t, "second migrate (must be a no-op)", r.stderr, "applied migration")
}

func tooNew(t *testing.T, db *sql.DB, vars map[string]string) {
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO ony_schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', '2099-01-01T00:00:00Z')`); err != nil {
		t.Fatalf("insert version 9999: %v", err)
	}
	db.Close()
	r := runOny(t, vars, "", "migrate")
	if r.code == 0 {
		t.Fatalf("migrate on a newer schema succeeded:\n%s", r)
	}
	mustContain(t, "migrate on a newer schema", r.stderr, "newer than this binary", "9999")
	srv := startServe(t, vars)
	code, ok := srv.exited(20 * time.Second)
	if !ok {
		t.Fatal("ony serve kept running on a database newer than the binary")
	}
	if code == 0 {
		t.Fatal("ony serve exited 0 on a database newer than the binary")
	}
	stderr := srv.Stderr()
	explainCrash(t, stderr)
	mustContain(t, "serve on a newer schema", stderr, "newer than this binary")
	if strings.TrimSpace(srv.Stdout()) != "" {
		t.Errorf("serve on a newer schema printed on stdout:\n%s", srv.Stdout())
	}
}

// Scenario 5: configuration checks, secret masking and error reporting.
func TestConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "listen: 127.0.0.1:9999\nlog:\n  format: json\n")

	t.Run("masked", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"ONY_DATABASE_URL": "postgres://u:CANARY@h/db", "ONY_REDIS_URL": "redis://:REDISCANARY@h:6379/0"}
		r := runOny(t, vars, "", "config", "check", "--config", good)
		if r.code != 0 {
			t.Fatalf("config check: %s", r)
		}
		mustContain(t, "config check", r.stdout, "listen: 127.0.0.1:9999", "format: json", "******", "public_url: http://127.0.0.1:9999")
		mustNotContain(t, "config check output", r.stdout+r.stderr, "CANARY", "postgres://u", "REDISCANARY")
		// The environment wins over the file; ONY_CONFIG names the file too.
		vars["ONY_CONFIG"] = good
		vars["ONY_LISTEN"] = "127.0.0.1:7777"
		r = runOny(t, vars, "", "config", "check")
		if r.code != 0 {
			t.Fatalf("config check via ONY_CONFIG: %s", r)
		}
		mustContain(t, "config check via ONY_CONFIG", r.stdout, "listen: 127.0.0.1:7777", "format: json")
		mustNotContain(t, "config check via ONY_CONFIG", r.stdout+r.stderr, "CANARY")
	})

	t.Run("connect error does not leak the password", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{"ONY_DATABASE_URL": "postgres://u:CANARY@127.0.0.1:1/db?connect_timeout=2"}
		r := runOny(t, vars, "", "migrate")
		if r.code == 0 {
			t.Fatalf("migrate against a closed port succeeded:\n%s", r)
		}
		mustNotContain(t, "migrate's output", r.stdout+r.stderr, "CANARY")
		vars["ONY_DATABASE_URL"] = "postgres://u:CANARY@[bad/db"
		r = runOny(t, vars, "", "migrate")
		if r.code == 0 {
			t.Fatalf("migrate with an unparseable URL succeeded:\n%s", r)
		}
		mustNotContain(t, "migrate's output", r.stdout+r.stderr, "CANARY")
	})

	t.Run("three mistakes", func(t *testing.T) {
		t.Parallel()
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		writeFile(t, bad, strings.Join([]string{
			"# three mistakes",               // 1
			"listen: 127.0.0.1:9998",         // 2
			"log:",                           // 3
			"  level: loud",                  // 4: bad log level
			"handoffs:",                      // 5
			"  default_timeout: ten minutes", // 6: bad duration
			"shutdown_timout: 5s",            // 7: unknown key
			"",
		}, "\n"))
		vars := map[string]string{"ONY_DATA_DIR": t.TempDir()}
		check := runOny(t, vars, "", "config", "check", "--config", bad)
		vars["ONY_LISTEN"] = freeAddr(t)
		serve := runOny(t, vars, "", "serve", "--config", bad)
		for name, r := range map[string]result{"config check": check, "serve": serve} {
			if r.code != 2 {
				t.Errorf("%s: exit %d, want 2\n%s", name, r.code, r)
				continue
			}
			mustContain(t, name+"'s stderr", r.stderr,
				"configuration has 3 problem(s)",
				bad+":4:", "log.level",
				bad+":6:", "handoffs.default_timeout",
				bad+":7:", "shutdown_timout", "unknown key")
			if r.stdout != "" {
				t.Errorf("%s printed on stdout:\n%s", name, r.stdout)
			}
		}
		if _, err := os.Stat(filepath.Join(vars["ONY_DATA_DIR"], "ony.db")); err == nil {
			t.Error("serve created a database despite a broken configuration")
		}
	})

	// A policy's mistakes share the configuration's error type, but they are not the configuration's:
	// serve names them as they are, under its usual prefix and exit status.
	t.Run("broken risk policy", func(t *testing.T) {
		t.Parallel()
		policy := filepath.Join(t.TempDir(), "policy.yaml")
		writeFile(t, policy, "version: 1\nfloors: {actions: {deploy: loud}}\n")
		vars := map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_LISTEN": freeAddr(t), "ONY_RISK_POLICY_FILE": policy}
		r := runOny(t, vars, "", "serve")
		if r.code != 1 {
			t.Fatalf("serve with a broken policy: exit %d, want 1\n%s", r.code, r)
		}
		mustContain(t, "serve's stderr", r.stderr, "ony: "+policy+`:2:28: floors.actions["deploy"]: bad level "loud"`)
		mustNotContain(t, "serve's stderr", r.stderr, "configuration has")
	})

	t.Run("ladders", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a.yaml"), "name: a\nsteps:\n  - channels: [pager]\n    targets: [role:admin]\n    wait: 1m\n")
		writeFile(t, filepath.Join(dir, "b.yaml"), "name: b\nsteps:\n  - channels: [webhook]\n    targets: [webhook:teams]\n    wait: 1m\n")
		r := runOny(t, map[string]string{"ONY_ESCALATION_LADDERS_DIR": dir}, "", "config", "check")
		if r.code != 2 {
			t.Fatalf("config check with a broken ladder: %s", r)
		}
		mustContain(t, "config check's stderr", r.stderr, filepath.Join(dir, "a.yaml")+":3:16", `unknown channel "pager"`)
		// Once the files parse, a bridge the configuration does not define is the mistake left.
		writeFile(t, filepath.Join(dir, "a.yaml"), "name: a\nsteps:\n  - channels: [console]\n    targets: [role:admin]\n    wait: 1m\n")
		r = runOny(t, map[string]string{"ONY_ESCALATION_LADDERS_DIR": dir}, "", "config", "check")
		if r.code != 2 {
			t.Fatalf("config check with an undefined bridge: %s", r)
		}
		mustContain(t, "config check's stderr", r.stderr, "ladder b targets webhook:teams, which escalation.webhooks does not define")
	})

	// A misspelt variable is ignored by the loader; check fails on it and serve warns, both naming the
	// variable and the name meant, never the value.
	t.Run("unknown variables", func(t *testing.T) {
		t.Parallel()
		vars := map[string]string{
			"ONY_DATABSE_URL":  "postgres://u:CANARY@h/db",
			"ONY_LOG_LEVL":     "CANARYLEVEL",
			"ONY_LISTEN_FILE":  "/run/CANARY",
			"ONY_DATA_DIR":     t.TempDir(),
			"ONY_DATABASE_URL": "", // known, and set: SQLite
		}
		r := runOny(t, vars, "", "config", "check")
		if r.code != 2 {
			t.Fatalf("config check with misspelt variables: %s", r)
		}
		mustContain(t, "config check's stderr", r.stderr, "configuration has 3 problem(s)",
			"ONY_DATABSE_URL: unknown variable, Ony ignores it (nearest known name: ONY_DATABASE_URL)",
			"ONY_LOG_LEVL: unknown variable, Ony ignores it (nearest known name: ONY_LOG_LEVEL)",
			"ONY_LISTEN_FILE: unknown variable, Ony ignores it (nearest known name: ONY_LISTEN)")
		mustNotContain(t, "config check", r.stdout+r.stderr, "CANARY")
		if r.stdout != "" {
			t.Errorf("config check printed the configuration despite its mistakes:\n%s", r.stdout)
		}
		// With a mistake in the file too, one list has all of them.
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		writeFile(t, bad, "log:\n  level: loud\n")
		r = runOny(t, vars, "", "config", "check", "--config", bad)
		if r.code != 2 {
			t.Fatalf("config check with a bad file and misspelt variables: %s", r)
		}
		mustContain(t, "config check's stderr", r.stderr, "configuration has 4 problem(s)", bad+":2:", "ONY_DATABSE_URL")

		srv := startServe(t, vars)
		srv.waitReady()
		stderr := srv.Stderr()
		warned := func(name string) bool {
			for _, l := range strings.Split(stderr, "\n") {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "variable="+name+" ") {
					return true
				}
			}
			return false
		}
		for _, name := range []string{"ONY_DATABSE_URL", "ONY_LOG_LEVL", "ONY_LISTEN_FILE"} {
			if !warned(name) {
				t.Errorf("serve did not warn about %s:\n%s", name, stderr)
			}
		}
		mustContain(t, "serve's stderr", stderr, "nearest_known=ONY_DATABASE_URL", "nearest_known=ONY_LOG_LEVEL")
		mustNotContain(t, "serve's output", stderr+srv.Stdout(), "CANARY")
		srv.stop()
	})

	t.Run("database url from a file", func(t *testing.T) {
		t.Parallel()
		secretDir := t.TempDir()
		canaryFile := filepath.Join(secretDir, "canary-url")
		writeFile(t, canaryFile, "postgres://u:CANARY@h/db\n")
		r := runOny(t, map[string]string{"ONY_DATABASE_URL_FILE": canaryFile}, "", "config", "check")
		if r.code != 0 {
			t.Fatalf("config check with ONY_DATABASE_URL_FILE: %s", r)
		}
		mustContain(t, "config check", r.stdout, "******")
		mustNotContain(t, "config check", r.stdout+r.stderr, "CANARY")

		// Both forms at once is a configuration error that names both variables.
		r = runOny(t, map[string]string{"ONY_DATABASE_URL_FILE": canaryFile, "ONY_DATABASE_URL": "postgres://u:CANARY@h/db"}, "", "config", "check")
		if r.code != 2 {
			t.Fatalf("both ONY_DATABASE_URL and _FILE: %s", r)
		}
		mustContain(t, "config check", r.stderr, "ONY_DATABASE_URL", "ONY_DATABASE_URL_FILE")
		mustNotContain(t, "config check", r.stdout+r.stderr, "CANARY")

		// A missing file is reported by its path.
		r = runOny(t, map[string]string{"ONY_DATABASE_URL_FILE": filepath.Join(secretDir, "missing")}, "", "config", "check")
		if r.code != 2 {
			t.Fatalf("missing ONY_DATABASE_URL_FILE: %s", r)
		}
		mustContain(t, "config check", r.stderr, "missing")

		// A real URL from a file: migrate connects with it.
		realFile := filepath.Join(secretDir, "real-url")
		writeFile(t, realFile, testdb.PostgresURL(t)+"\n")
		r = runOny(t, map[string]string{"ONY_DATABASE_URL_FILE": realFile, "ONY_DATA_DIR": t.TempDir()}, "", "migrate")
		if r.code != 0 {
			t.Fatalf("migrate with ONY_DATABASE_URL_FILE: %s", r)
		}
		mustContain(t, "migrate", r.stderr, "postgres database is up to date")
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Scenario 6: SIGTERM answers long-polls with the current state and exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	srv := startServe(t, map[string]string{"ONY_DATA_DIR": t.TempDir()})
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	agent := newClient(t, srv.URL, b.Token)
	h, _, err := agent.Create(ctx, client.CreateRequest{Action: "db.migrate", Title: "Migrate prod"}, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	type waited struct {
		h   *client.Handoff
		err error
		at  time.Time
	}
	waitc := make(chan waited, 1)
	go func() {
		wh, err := agent.WaitOnce(ctx, h.ID, 50*time.Second)
		waitc <- waited{wh, err, time.Now()}
	}()
	// Give the long-poll time to reach the server and block.
	select {
	case w := <-waitc:
		t.Fatalf("the long-poll returned before shutdown: %+v, %v", w.h, w.err)
	case <-time.After(time.Second):
	}

	sent := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-waitc:
		if w.err != nil {
			t.Fatalf("the long-poll failed on shutdown instead of answering: %v", w.err)
		}
		if w.h.ID != h.ID || w.h.Status != client.StatusPending {
			t.Fatalf("the long-poll answered %+v, want the pending handoff", w.h)
		}
		if d := w.at.Sub(sent); d > 5*time.Second {
			t.Fatalf("the long-poll took %s to answer after the signal, want < 5s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the long-poll did not answer within 5s of the signal")
	}
	code, ok := srv.exited(10 * time.Second)
	if !ok {
		t.Fatal("ony serve did not exit within 10s of the signal")
	}
	if code != 0 {
		t.Fatalf("ony serve exited with %d after the signal, want 0", code)
	}
	logs := srv.Stderr()
	mustContain(t, "the server log", logs, "shutting down")
	mustNotContain(t, "the server log", logs, "level=ERROR", "level=WARN")
}

// Scenario 7: a handoff's expiry and its callback survive a crash.
func TestDurableJobsAcrossCrash(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		durableJobs(t, map[string]string{"ONY_DATA_DIR": t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		durableJobs(t, map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_DATABASE_URL": testdb.PostgresURL(t)})
	})
}

type callback struct {
	header http.Header
	body   []byte
	at     time.Time
}

type receiver struct {
	mu    sync.Mutex
	calls []callback
	got   chan struct{}
}

func newReceiver(t *testing.T) (*receiver, *httptest.Server) {
	rc := &receiver{got: make(chan struct{}, 100)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		rc.mu.Lock()
		rc.calls = append(rc.calls, callback{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		rc.got <- struct{}{}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	return rc, ts
}

func (rc *receiver) snapshot() []callback {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]callback(nil), rc.calls...)
}

func durableJobs(t *testing.T, vars map[string]string) {
	// The receiver is on 127.0.0.1, beside the server, as on a single machine.
	vars["ONY_CALLBACKS_ALLOW_PRIVATE"] = "true"
	ctx := testCtx(t, 90*time.Second)
	rc, ts := newReceiver(t)
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	agent := newClient(t, srv.URL, b.Token)
	h, _, err := agent.Create(ctx, client.CreateRequest{
		Action: "shell.exec", Title: "Rotate logs", CallbackURL: ts.URL + "/hook?k=v", Timeout: 10 * time.Second,
	}, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	srv.kill()
	if until := time.Until(h.ExpiresAt); until < 8*time.Second || until > 11*time.Second {
		t.Fatalf("expires_at is %s away, want about 10s", until)
	}

	// Come back only after the handoff is past due, so nothing but the durable job can expire it.
	time.Sleep(time.Until(h.ExpiresAt) + 2*time.Second)
	if n := len(rc.snapshot()); n != 0 {
		t.Fatalf("the callback receiver got %d calls while the server was down", n)
	}
	srv2 := startServe(t, vars)
	srv2.waitReady()
	started := time.Now()
	agent2 := newClient(t, srv2.URL, b.Token)
	// River's scheduler promotes due jobs every 5 s once this process is elected leader, so "shortly"
	// is several seconds; 20 s leaves room for a loaded machine under -race.
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := agent2.Wait(wctx, h.ID)
	if err != nil {
		t.Fatalf("wait for expiry after restart: %v", err)
	}
	if got.Status != client.StatusExpired {
		t.Fatalf("after restart the handoff is %q, want expired", got.Status)
	}
	t.Logf("expired %s after the restart was ready", time.Since(started).Round(time.Millisecond))

	select {
	case <-rc.got:
	case <-time.After(15 * time.Second):
		t.Fatal("no callback within 15s of the expiry")
	}
	// Only a running server can post: once it has exited (the first was killed) and the receiver has
	// answered every POST, a duplicate delivery would be among what it received.
	srv2.stop()
	ts.Close()
	calls := rc.snapshot()
	if len(calls) != 1 {
		t.Fatalf("the callback receiver got %d POSTs, want exactly 1", len(calls))
	}
	c := calls[0]
	ch, err := client.VerifyCallback(b.Token, c.header, c.body, time.Now())
	if err != nil {
		t.Fatalf("the callback does not verify: %v\nheaders %v\nbody %s", err, c.header, c.body)
	}
	if ch.ID != h.ID || ch.Status != client.StatusExpired {
		t.Fatalf("the callback carries %+v, want handoff %s expired", ch, h.ID)
	}
	if id := c.header.Get("webhook-id"); id != "msg_"+h.ID+"_expired" {
		t.Errorf("webhook-id %q, want msg_%s_expired", id, h.ID)
	}
	// A wrong token must not verify the same callback.
	if _, err := client.VerifyCallback("ony_dev_wrong", c.header, c.body, time.Now()); err == nil {
		t.Error("the callback verifies with the wrong token")
	}
	// The body is the handoff view, as the API shows it.
	if !bytes.Contains(c.body, []byte(`"status":"expired"`)) {
		t.Errorf("callback body: %s", c.body)
	}
}

// Scenario 8: usage.
func TestUsage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{nil, 2, "", "usage:"},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"help"}, 0, "usage:", ""},
		{[]string{"--help"}, 0, "usage:", ""},
		{[]string{"-h"}, 0, "usage:", ""},
		{[]string{"config"}, 2, "", "usage: ony config check"},
		{[]string{"config", "nope"}, 2, "", "usage: ony config check"},
		{[]string{"serve", "--nope"}, 2, "", "flag provided but not defined"},
		{[]string{"migrate", "extra"}, 2, "", `unexpected argument "extra"`},
	} {
		r := runOny(t, nil, "", c.args...)
		name := "ony " + strings.Join(c.args, " ")
		if r.code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", name, r.code, c.code, r)
			continue
		}
		if c.out != "" {
			mustContain(t, name+" stdout", r.stdout, c.out)
		} else if r.stdout != "" {
			t.Errorf("%s printed on stdout:\n%s", name, r.stdout)
		}
		if c.errs != "" {
			mustContain(t, name+" stderr", r.stderr, c.errs)
		}
	}
}

// `ony serve` must fail with a readable error, not a crash, when what it opens is unusable.
func TestServeStartupFailures(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notADir, "not a directory")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"postgres down", map[string]string{"ONY_DATABASE_URL": "postgres://ony:CANARY@127.0.0.1:1/ony?connect_timeout=2"}, "postgres: connect to 127.0.0.1"},
		{"redis down", map[string]string{"ONY_REDIS_URL": "redis://:CANARY@127.0.0.1:1/0"}, "redis"},
		{"data dir is a file", map[string]string{"ONY_DATA_DIR": notADir}, "data directory"},
		{"port in use", map[string]string{"ONY_LISTEN": busy.Addr().String()}, "listen on " + busy.Addr().String()},
		{"metrics port in use", map[string]string{"ONY_METRICS_LISTEN": busy.Addr().String()}, "listen on " + busy.Addr().String() + " (metrics.listen)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"ONY_DATA_DIR": t.TempDir()}
			for k, v := range c.vars {
				vars[k] = v
			}
			srv := startServe(t, vars)
			// A hang detector, not a timing assertion: under CI's load a start's migrations alone took 4 s.
			code, ok := srv.exited(90 * time.Second)
			if !ok {
				t.Fatal("ony serve kept running")
			}
			// Each failure comes before the first organization is made: its password is printed once.
			if out := srv.Stdout(); out != "" {
				t.Errorf("ony serve printed on stdout before failing:\n%s", out)
			}
			stderr := srv.Stderr()
			explainCrash(t, stderr)
			if code != 1 || strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("ony serve exited %d; want 1 with a readable error, not a crash (stderr below)", code)
			}
			if !hasLine(stderr, "ony: ", c.want) {
				t.Fatalf("stderr has no readable \"ony: ...%s...\" line", c.want)
			}
			mustNotContain(t, "stderr", stderr, "CANARY")
		})
	}
}

// explainCrash names the known cause when `ony serve` panics while giving up on startup.
func explainCrash(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "panic:") && strings.Contains(stderr, "closeResources") {
		t.Errorf("ony serve crashed while cleaning up a failed start: app.New keeps the typed-nil store or " +
			"coordination that OpenStore/OpenCoord return with an error and closeResources then calls Close on it " +
			"(app/app.go); the real error message is lost")
	}
}
