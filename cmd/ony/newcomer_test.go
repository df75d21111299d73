package main

// Tests of what a newcomer meets first: a start that fails leaves nothing behind, commands run in the
// wrong place refuse instead of creating an instance, the first-start banner, and `ony version`.

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
)

// A first start whose port is taken must fail before it sets anything up: no organization, no
// password or token on stdout (a curl aimed at the other process's port would be worse than nothing),
// no data directory, no schema.
func TestServePortTakenCreatesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "ony-data")
			vars := map[string]string{"ONY_DATA_DIR": dataDir, "ONY_LISTEN": busy.Addr().String()}
			var pgURL string
			if dialect == "postgres" {
				pgURL = testdb.PostgresURL(t)
				vars["ONY_DATABASE_URL"] = pgURL
			}
			srv := startServe(t, vars)
			code, ok := srv.exited(30 * time.Second)
			if !ok {
				t.Fatal("ony serve kept running with its port taken")
			}
			if code == 0 {
				t.Fatal("ony serve exited 0 with its port taken")
			}
			if !hasLine(srv.Stderr(), "ony: ", "listen on "+busy.Addr().String()) {
				t.Errorf("stderr has no readable \"ony: listen on %s\" line:\n%s", busy.Addr(), srv.Stderr())
			}
			if out := srv.Stdout(); out != "" {
				t.Errorf("stdout is not empty (a password or token printed for an instance that never served):\n%s", out)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dataDir)
				t.Errorf("the data directory was created (%d entries): %v", len(entries), err)
			}
			if pgURL != "" {
				if n := tableCount(t, pgURL); n != 0 {
					t.Errorf("the schema has %d tables, want none", n)
				}
			}
		})
	}
}

// tableCount is how many tables the schema of a testdb URL holds.
func tableCount(t *testing.T, url string) int {
	t.Helper()
	db, err := sql.Open("pgx", testdb.SuperuserURL(url))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Commands that work on an existing instance — the admin and audit commands — must not create one
// when run in the wrong directory or against the wrong database: each refuses with a line that says
// where it looked, exits non-zero, and leaves no data directory, key or schema behind. Only serve and
// migrate create.
func TestCommandsRefuseMissingInstance(t *testing.T) {
	t.Parallel()
	const someID = "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10"
	commands := [][]string{
		{"admin", "create-org", "--name", "Acme", "--admin-email", "boss@acme.test"},
		{"admin", "create-device", "--org", someID, "--name", "runner"},
		{"admin", "revoke-device", "--org", someID, "--device", someID},
		{"admin", "erase-org", "--org", someID, "--confirm", someID},
		{"admin", "create-user", "--org", someID, "--email", "ana@acme.test", "--name", "Ana"},
		{"admin", "set-user", "--org", someID, "--email", "ana@acme.test", "--timezone", "UTC"},
		{"audit", "verify"},
		{"audit", "export", "--org", someID, "-o", "EXPORT"},
		{"audit", "key"},
	}
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "ony-data")
			vars := map[string]string{"ONY_DATA_DIR": dataDir}
			where := filepath.Join(dataDir, "ony.db")
			var pgURL string
			if dialect == "postgres" {
				pgURL = testdb.PostgresURL(t)
				vars["ONY_DATABASE_URL"] = pgURL
				where = "the PostgreSQL database at 127.0.0.1:5432/" + testdb.Database + " (search_path "
			}
			export := filepath.Join(t.TempDir(), "export.json")
			refused := 0
			for _, args := range commands {
				args = append([]string(nil), args...)
				for i, a := range args {
					if a == "EXPORT" {
						args[i] = export
					}
				}
				want := where
				if args[0] == "audit" && args[1] == "key" { // reads only the key
					want = filepath.Join(dataDir, "audit-signing.key")
				}
				r := runOny(t, vars, "", args...)
				name := strings.Join(args[:2], " ")
				switch {
				case r.code == 0:
					t.Errorf("ony %s exited 0 without an instance:\n%s", name, r)
				case r.stdout != "":
					t.Errorf("ony %s printed on stdout:\n%s", name, r)
				case !hasLine(r.stderr, "ony: ", want):
					t.Errorf("ony %s: no \"ony: \" line naming %q:\n%s", name, want, r)
				default:
					refused++
				}
				mustNotContain(t, "ony "+name, r.stderr, "postgres://", "applied migration", "panic:")
			}
			t.Logf("%s: %d of %d commands refused a missing instance", dialect, refused, len(commands))
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dataDir)
				t.Errorf("the data directory was created (%d entries): %v", len(entries), err)
			}
			if _, err := os.Stat(export); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("audit export created its output file: %v", err)
			}
			if pgURL != "" {
				if n := tableCount(t, pgURL); n != 0 {
					t.Errorf("the schema has %d tables, want none", n)
				}
			}
		})
	}
}

// After `ony migrate` the admin commands work on the new instance; with its signing key gone they
// refuse rather than sign with a new one.
func TestMigrateThenAdmin(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dataDir}
	if r := runOny(t, vars, "", "migrate"); r.code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	for _, f := range []string{"ony.db", "keyring", "audit-signing.key"} {
		if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
			t.Errorf("after migrate: %v", err)
		}
	}
	r := runOny(t, vars, "", "admin", "create-org", "--name", "Acme", "--admin-email", "boss@acme.test")
	if r.code != 0 {
		t.Fatalf("create-org after migrate: %s", r)
	}
	orgID := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0])
	key := filepath.Join(dataDir, "audit-signing.key")
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	r = runOny(t, vars, "", "admin", "create-device", "--org", orgID, "--name", "runner")
	if r.code == 0 || r.stdout != "" || !hasLine(r.stderr, "ony: ", key) {
		t.Errorf("create-device without the signing key: want a refusal naming %s\n%s", key, r)
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("create-device made a new signing key: %v", err)
	}
}

// `ony version` names the build — module version, commit and its time as the build stamped them —
// and `ony mcp` reports the same version in its server info.
func TestVersion(t *testing.T) {
	t.Parallel()
	r := runOny(t, nil, "", "version")
	m := regexp.MustCompile(`^ony (\S+)(?: \(commit ([0-9a-f]{7,12})(?:, modified)?(?:, (?:committed|built) \S+)?\))?\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("ony version: want one line \"ony VERSION (commit …, committed …)\"\n%s", r)
	}
	t.Logf("ony version: %s", strings.TrimSpace(r.stdout))
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && m[2] != "" && !strings.HasPrefix(string(out), m[2]) {
		t.Errorf("ony version names commit %s; the work tree is at %s", m[2], out)
	}
	want := m[1]
	if want == "(devel)" {
		want = "devel"
		if m[2] != "" {
			want += "+" + m[2]
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.Command(onyBin, "mcp", "--url", "http://127.0.0.1:1", "--token", "ony_dev_x")
	cmd.Env = env(nil)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := cs.InitializeResult().ServerInfo.Version; got != want {
		t.Errorf("ony mcp reports version %q; ony version says %q", got, want)
	}
}

// The first start's banner is ready to paste: its export line sets ONY_URL and ONY_TOKEN to this
// server and the agent's token, and its lines — ask, sign in, approve, wait — run as printed, with jq
// and with the variant without it. The reset-password line it names works on the same instance.
func TestFirstStartBanner(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"ONY_DATA_DIR": t.TempDir()}
			if dialect == "postgres" {
				vars["ONY_DATABASE_URL"] = testdb.PostgresURL(t)
			}
			srv := startServe(t, vars)
			srv.waitReady()
			out := srv.Stdout()
			b := parseBootstrap(t, out)
			mustContain(t, "the banner", out, "The password is the admin's own, not a temporary one",
				"ony admin reset-password --org "+b.OrgID+" --email "+b.Email,
				"Open the console at "+srv.URL+"/console/ and sign in with the email and password above.")
			// The console URL it prints opens the sign-in page.
			res, err := testhttp.Client.Get(srv.URL + "/console/")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || res.Request.URL.Path != "/console/login" || !strings.Contains(string(page), `name="password"`) {
				t.Errorf("the printed console URL: %d at %s", res.StatusCode, res.Request.URL)
			}

			var script []string
			in := false
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "  export ") {
					in = true
				}
				if in && strings.HasPrefix(l, "  ") {
					script = append(script, strings.TrimPrefix(l, "  "))
				}
			}
			if len(script) < 2 || !strings.HasPrefix(script[0], "export ") {
				t.Fatalf("no export line and commands in the banner:\n%s", out)
			}
			sh := func(s string) string {
				t.Helper()
				cmd := exec.Command("sh", "-ec", s)
				cmd.Dir = t.TempDir()
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
				got, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("sh: %v\n--- script:\n%s\n--- output:\n%s", err, s, got)
				}
				return string(got)
			}
			if got := sh(script[0] + "\nprintf '%s %s' \"$ONY_URL\" \"$ONY_TOKEN\""); got != srv.URL+" "+b.Token {
				t.Errorf("the export line sets %q, want %q", got, srv.URL+" "+b.Token)
			}
			got := sh(strings.Join(script, "\n"))
			if !strings.Contains(got, `"status":"approved"`) || !strings.Contains(got, `"comment":"go ahead"`) {
				t.Errorf("the banner's lines did not end with the handoff approved:\n%s", got)
			}

			// Without jq: the banner's alternative ending for the first command.
			m := regexp.MustCompile(`(?m)^\(Without jq, end the first command with (\| .*) instead\.\)$`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no variant without jq in the banner:\n%s", out)
			}
			create := strings.Join(script[:3], "\n")
			if !strings.HasSuffix(create, "| jq -r .id)") {
				t.Fatalf("the first command does not end with jq:\n%s", create)
			}
			noJQ := strings.TrimSuffix(create, "| jq -r .id)") + m[1] + ")"
			got = sh(noJQ + "\ncurl -s \"$ONY_URL/v1/handoffs/$ID\" -H \"Authorization: Bearer $ONY_TOKEN\"")
			if !regexp.MustCompile(`^\{"id":"[0-9a-f-]{36}","status":"pending"`).MatchString(got) {
				t.Errorf("the variant without jq did not set ID to the new handoff:\n%s\n%s", noJQ, got)
			}

			// The reset line the banner names: a new password (shown once); the old one and the
			// admin's sessions end.
			ctx := testCtx(t, 60*time.Second)
			hc := newJarClient(t)
			admin := loginWith(t, ctx, hc, srv.URL, b.Email, b.Password)
			r := runOny(t, vars, "", "admin", "reset-password", "--org", b.OrgID, "--email", b.Email)
			rm := regexp.MustCompile(`^reset the password of (\S+) \(user [0-9a-f-]{36}\); (\d+) session\(s\) ended; new password \(shown once\): (\S+)\n$`).FindStringSubmatch(r.stdout)
			if r.code != 0 || rm == nil || rm[1] != b.Email {
				t.Fatalf("reset-password: %s", r)
			}
			if rm[2] != "2" { // the banner's script signed in once, and so did this test
				t.Errorf("reset-password ended %s sessions, want 2", rm[2])
			}
			if _, err := admin.List(ctx, "", 1); !isAPIError(err, 401) {
				t.Errorf("the admin's session after the reset: %v, want 401", err)
			}
			if _, err := newPersonClient(t, srv.URL, newJarClient(t)).Login(ctx, b.Email, b.Password); !isAPIError(err, 401) {
				t.Errorf("the old password after the reset: %v, want 401", err)
			}
			loginWith(t, ctx, newJarClient(t), srv.URL, b.Email, rm[3])
			srv.stop()
		})
	}
}
