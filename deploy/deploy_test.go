package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/modfile"

	"github.com/ony-ai/ony/config"
)

const root = ".."

// unit is a systemd unit file: section → key → values in order (a key may repeat).
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	vs := u[section][key]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// parseUnit reads the subset of systemd's unit syntax the file uses: [Section] headers, key=value
// lines, comments and backslash continuations.
func parseUnit(t *testing.T, data []byte) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	var pending string
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("ony.service:%d: not key=value inside a section: %q", n, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// systemdSeconds reads a systemd time span such as 30s, 1min 30s or a bare number of seconds.
func systemdSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	if regexp.MustCompile(`^\d+$`).MatchString(s) {
		s += "s" // a bare number is seconds
	}
	s = strings.NewReplacer("min", "m", " ", "").Replace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return d
}

// TestSystemdUnit checks the unit for what the operations guide promises of it: a dedicated user, a
// state directory that is the data directory, the hardening options, secrets from an environment
// file, restarts on failure, and a stop that gives the server's drain its whole shutdown_timeout.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("ony.service")
	if err != nil {
		t.Fatal(err)
	}
	u := parseUnit(t, data)
	for _, want := range []struct{ section, key, value string }{
		{"Service", "StateDirectory", "ony"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "PrivateDevices", "yes"},
		{"Service", "Restart", "on-failure"},
		{"Service", "KillSignal", "SIGTERM"},
		{"Service", "CapabilityBoundingSet", ""},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if _, ok := u[want.section][want.key]; !ok {
			t.Errorf("[%s] %s is missing", want.section, want.key)
		} else if got := u.get(want.section, want.key); got != want.value {
			t.Errorf("[%s] %s=%s, want %s", want.section, want.key, got, want.value)
		}
	}
	if user := u.get("Service", "User"); user == "" || user == "root" || user == "0" {
		t.Errorf("User=%q: the service must run as a dedicated user", user)
	}
	if u.get("Service", "EnvironmentFile") == "" {
		t.Error("EnvironmentFile is missing: secrets come from a root-only file, not the unit")
	}
	if exec := strings.Fields(u.get("Service", "ExecStart")); len(exec) < 2 || path.Base(exec[0]) != "ony" || exec[1] != "serve" {
		t.Errorf("ExecStart=%q, want …/ony serve", u.get("Service", "ExecStart"))
	}
	state := "/var/lib/" + u.get("Service", "StateDirectory")
	if !containsValue(u["Service"]["Environment"], "ONY_DATA_DIR="+state) {
		t.Errorf("Environment lacks ONY_DATA_DIR=%s: the data would land in the working directory, not the state directory", state)
	}
	stop := systemdSeconds(t, u.get("Service", "TimeoutStopSec"))
	if drain := config.Default().ShutdownTimeout.D(); stop <= drain {
		t.Errorf("TimeoutStopSec=%s is not longer than shutdown_timeout's default %s: systemd would kill the drain", stop, drain)
	}
	for _, key := range []string{"Environment", "ExecStart"} {
		for _, v := range u["Service"][key] {
			if regexp.MustCompile(`(?i)(password|secret|token|://[^/@]*:[^/@]*@)`).MatchString(v) {
				t.Errorf("%s=%s looks like it holds a secret: secrets belong in the EnvironmentFile", key, v)
			}
		}
	}
}

func containsValue(vs []string, want string) bool {
	for _, v := range vs {
		for _, f := range strings.Fields(v) {
			if strings.Trim(f, `"`) == want {
				return true
			}
		}
	}
	return false
}

// TestSystemdAnalyzeVerify has systemd itself check the unit, with ExecStart pointed at a freshly
// built binary (verify insists that the program exists). It needs systemd-analyze; TestSystemdUnit
// checks the same file without it.
func TestSystemdAnalyzeVerify(t *testing.T) {
	t.Parallel()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; TestSystemdUnit still checks the unit's settings")
	}
	bin := staticBinary(t)
	data, err := os.ReadFile("ony.service")
	if err != nil {
		t.Fatal(err)
	}
	unitText := regexp.MustCompile(`(?m)^ExecStart=\S+`).ReplaceAllString(string(data), "ExecStart="+bin)
	dir := t.TempDir()
	unitPath := filepath.Join(dir, "ony.service")
	if err := os.WriteFile(unitPath, []byte(unitText), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", "--man=no", unitPath).CombinedOutput()
	// verify also reports on units it loads beside this one (network-online.target on a machine that
	// does not run systemd); only lines about ony.service count.
	var problems []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "ony.service") {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		t.Errorf("systemd-analyze verify:\n%s", strings.Join(problems, "\n"))
	}
	if err != nil && len(problems) == 0 {
		t.Logf("systemd-analyze verify exited with %v but named nothing in ony.service:\n%s", err, out)
	}
}

// dockerfile is the Dockerfile's instructions, continuation lines joined.
func dockerfile(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

func instructions(lines []string, name string) []string {
	var out []string
	for _, l := range lines {
		if op, rest, _ := strings.Cut(l, " "); strings.EqualFold(op, name) {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	return out
}

// goBuild is the Dockerfile's `go build` command: its environment prefix and its arguments.
func goBuild(t *testing.T, lines []string) string {
	t.Helper()
	for _, r := range instructions(lines, "RUN") {
		if i := strings.Index(r, "go build"); i >= 0 {
			cmd := r
			if j := strings.Index(cmd, "&&"); j > i {
				cmd = cmd[:j]
			}
			return strings.TrimSpace(cmd)
		}
	}
	t.Fatal("the Dockerfile has no RUN … go build")
	return ""
}

var ldflagsRE = regexp.MustCompile(`-ldflags\s+"([^"]*)"`)

// TestDockerfile checks the image recipe against the module and the server's defaults: the builder's
// Go is go.mod's, the build is static and trimmed, the final image is distroless or scratch and runs
// unprivileged, and the listen address, port and data volume agree.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	lines := dockerfile(t)
	modData, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", modData, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantGo := mod.Go.Version
	if mod.Toolchain != nil {
		wantGo = strings.TrimPrefix(mod.Toolchain.Name, "go")
	}
	froms := instructions(lines, "FROM")
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	builder := regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)(?:-\S+)?\s+(?i:AS)\s+\S+$`).FindStringSubmatch(froms[0])
	if builder == nil {
		t.Fatalf("first stage FROM %s: want golang:<version> AS <name>", froms[0])
	}
	if builder[1] != wantGo {
		t.Errorf("builder is golang:%s but go.mod asks for Go %s", builder[1], wantGo)
	}
	final := strings.Fields(froms[len(froms)-1])[0]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static or scratch for a static binary", final)
	}

	build := goBuild(t, lines)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/ony"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build line lacks %s: %s", want, build)
		}
	}
	if m := ldflagsRE.FindStringSubmatch(build); m == nil || !strings.Contains(m[1], "-s -w") {
		t.Errorf(`go build line lacks -ldflags "-s -w …": %s`, build)
	}

	env := map[string]string{}
	for _, e := range instructions(lines, "ENV") {
		for _, kv := range strings.Fields(e) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	host, port, err := net.SplitHostPort(env["ONY_LISTEN"])
	if err != nil {
		t.Fatalf("ENV ONY_LISTEN=%q: %v", env["ONY_LISTEN"], err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("ONY_LISTEN=%s: inside a container Ony must listen on every interface", env["ONY_LISTEN"])
	}
	_, defPort, _ := net.SplitHostPort(config.Default().Listen)
	if port != defPort {
		t.Errorf("ONY_LISTEN port %s differs from the default port %s", port, defPort)
	}
	if got := instructions(lines, "EXPOSE"); len(got) != 1 || got[0] != port {
		t.Errorf("EXPOSE %v, want %s", got, port)
	}
	if got := instructions(lines, "VOLUME"); len(got) != 1 || got[0] != env["ONY_DATA_DIR"] || got[0] == "" {
		t.Errorf("VOLUME %v, want ONY_DATA_DIR (%q)", got, env["ONY_DATA_DIR"])
	}
	if users := instructions(lines, "USER"); len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("USER %v: the image must not run as root", users)
	}
	if ep := instructions(lines, "ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0], "/ony") {
		t.Errorf("ENTRYPOINT %v, want the ony binary", ep)
	}
	if cmd := instructions(lines, "CMD"); len(cmd) != 1 || !strings.Contains(cmd[0], `"serve"`) {
		t.Errorf("CMD %v, want [\"serve\"]", cmd)
	}
}

// TestDockerignoreKeepsBuildInputs: nothing `go build ./cmd/ony` reads (Go files and embedded files
// of every package it links, go.mod, go.sum) is left out of the build context.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimPrefix(path.Clean(l), "/"))
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-json=Dir,Module,GoFiles,EmbedFiles", "./cmd/ony")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir        string
			Module     *struct{ Main bool }
			GoFiles    []string
			EmbedFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || !p.Module.Main {
			continue // the standard library and the module cache are not in the context
		}
		rel, err := filepath.Rel(abs, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	if len(inputs) < 50 {
		t.Fatalf("go list named only %d inputs; the check is not seeing the build", len(inputs))
	}
	for _, in := range inputs {
		if p := ignoredBy(patterns, in); p != "" {
			t.Errorf(".dockerignore pattern %q leaves out %s, which the build needs", p, in)
		}
	}
	for _, must := range []string{".git", "bench", "ony-data"} {
		if ignoredBy(patterns, must) == "" {
			t.Errorf(".dockerignore should leave out %s", must)
		}
	}
}

// ignoredBy returns the pattern that leaves name out of the build context, or "". It follows
// Docker's rules for the patterns the file uses: a pattern matches a path or any of its parents,
// and "**/" matches any number of directories.
func ignoredBy(patterns []string, name string) string {
	parts := strings.Split(name, "/")
	for _, p := range patterns {
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := path.Match(p, prefix); ok {
				return p
			}
			if rest, deep := strings.CutPrefix(p, "**/"); deep {
				for j := 0; j < i; j++ {
					if ok, _ := path.Match(rest, strings.Join(parts[j:i], "/")); ok {
						return p
					}
				}
			}
		}
	}
	return ""
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildOut  []byte
)

// staticBinary builds cmd/ony the way the Dockerfile does (its CGO_ENABLED=0 and its flags, the
// version stamped as v0.0.0-deploytest) once for the tests that need it; TestMain removes it.
func staticBinary(t *testing.T) string {
	t.Helper()
	lines := dockerfile(t)
	build := goBuild(t, lines)
	buildOnce.Do(func() {
		m := ldflagsRE.FindStringSubmatch(build)
		if m == nil {
			buildErr = errors.New("the Dockerfile's go build has no -ldflags")
			return
		}
		ldflags := strings.NewReplacer("${VERSION}", "v0.0.0-deploytest", "${COMMIT}", "0123456789abcdef0123456789abcdef01234567").Replace(m[1])
		dir, err := os.MkdirTemp("", "ony-deploytest-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "ony")
		args := []string{"build", "-ldflags", ldflags, "-o", buildBin}
		if strings.Contains(build, "-trimpath") {
			args = append(args, "-trimpath")
		}
		cmd := exec.Command("go", append(args, "./cmd/ony")...)
		cmd.Dir = root
		cmd.Env = os.Environ()
		if m := regexp.MustCompile(`CGO_ENABLED=\S+`).FindString(build); m != "" {
			cmd.Env = append(cmd.Env, m) // the last of a name wins
		}
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build as in the Dockerfile: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}

// TestStaticBinary builds the binary as the Dockerfile does and checks it can run on distroless
// static or scratch: a static ELF (no interpreter, no dynamic section, no shared libraries), stripped
// of its symbol table, that runs and reports the version the build stamped.
func TestStaticBinary(t *testing.T) {
	t.Parallel()
	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Error("the binary names a dynamic loader (PT_INTERP): it would not start on distroless static or scratch")
		case elf.PT_DYNAMIC:
			t.Error("the binary has a dynamic section (PT_DYNAMIC)")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary keeps its symbol table: -ldflags -s did not reach the build")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("ony version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "v0.0.0-deploytest") || !strings.Contains(string(out), "0123456") {
		t.Errorf("ony version = %q: the -X flags in the Dockerfile do not reach internal/version", out)
	}
}
