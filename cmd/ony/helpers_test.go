package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testhttp"
)

// raceEnabled is set by race_test.go when the tests run under -race.
var raceEnabled bool

// onyBin is the binary under test, built once by TestMain.
var onyBin string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	flag.Parse()
	// The tests spend their time waiting on subprocesses, not on the CPU, so run more of them at once
	// than -parallel's default (GOMAXPROCS) unless the caller chose a value.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "12")
	}
	dir, err := os.MkdirTemp("", "ony-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	onyBin = filepath.Join(dir, "ony")
	args := []string{"build", "-o", onyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %s (race=%t) in %s\n", onyBin, raceEnabled, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// heavy bounds how many ony processes are in their CPU-heavy phase at once: a server from start to
// ready (migrations, a PBKDF2 hash for the bootstrap admin, both slow under -race) or an admin or
// migrate command. Without it, a dozen parallel tests start a dozen servers at the same moment and
// each one's 20 s readiness deadline measures the others' work too.
var heavy = make(chan struct{}, 3)

// env is a subprocess environment: PATH and HOME from the test process plus the given ONY_* variables.
func env(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		if !strings.HasPrefix(k, "ONY_") {
			panic("env: only ONY_* variables may be set, got " + k)
		}
		out = append(out, k+"="+v)
	}
	return out
}

// nextPort hands out ports below Linux's ephemeral range (32768–60999), each once per test binary.
// A port taken from the ephemeral range (Listen on :0) and released could be handed to anything else
// — an httptest server, an outgoing connection — in the seconds before `ony serve` binds it, and under
// load that happened. Below the range, only this counter hands ports out.
var nextPort atomic.Int32

func init() { nextPort.Store(int32(20000 + os.Getpid()%4000)) }

// freeAddr returns a 127.0.0.1 address that was free a moment ago and that no other test will get.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 200 {
		port := 20000 + (nextPort.Add(1)-20000)%12000
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("freeAddr: no free port below the ephemeral range")
	return ""
}

// result is a finished short-lived ony command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runOny runs one ony command to completion (30 s at most) in an empty working directory.
func runOny(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	if len(args) > 0 && (args[0] == "admin" || args[0] == "migrate") {
		heavy <- struct{}{}
		defer func() { <-heavy }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, onyBin, args...)
	cmd.Env = env(vars)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if d := time.Since(start); d > 2*time.Second {
		t.Logf("slow: ony %s took %s", strings.Join(args, " "), d.Round(time.Millisecond))
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("ony %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	checkNoRace(t, r.stderr)
	return r
}

func checkNoRace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("the ony binary reported a data race:\n%s", stderr)
	}
}

// proc is a long-running `ony serve`.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	URL     string
	outPath string
	errPath string
	done    chan struct{}
	code    int // valid once done is closed; -1 when killed by a signal
	// release gives back the process's slot in heavy, once: when it is ready or has exited.
	release func()
}

// startServe starts `ony serve` on a free port (unless vars sets ONY_LISTEN). stdout and stderr go to
// files, so whatever the server wrote before it became ready is readable at once. The process is
// killed when the test ends, if it is still running.
func startServe(t *testing.T, vars map[string]string, args ...string) *proc {
	t.Helper()
	v := make(map[string]string, len(vars)+1)
	for k, x := range vars {
		v[k] = x
	}
	if v["ONY_LISTEN"] == "" {
		v["ONY_LISTEN"] = freeAddr(t)
	}
	logDir := t.TempDir()
	p := &proc{t: t, URL: "http://" + v["ONY_LISTEN"], done: make(chan struct{}),
		outPath: filepath.Join(logDir, "stdout"), errPath: filepath.Join(logDir, "stderr")}
	out, err := os.Create(p.outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(p.errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	p.cmd = exec.Command(onyBin, append([]string{"serve"}, args...)...)
	p.cmd.Env = env(v)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	heavy <- struct{}{}
	p.release = sync.OnceFunc(func() { <-heavy })
	if err := p.cmd.Start(); err != nil {
		p.release()
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		p.release()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		checkNoRace(t, p.Stderr())
		if t.Failed() {
			t.Logf("ony serve at %s:\n--- stdout:\n%s--- stderr:\n%s", p.URL, p.Stdout(), p.Stderr())
		}
	})
	return p
}

func (p *proc) Stdout() string { return readFile(p.t, p.outPath) }
func (p *proc) Stderr() string { return readFile(p.t, p.errPath) }

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
	}
	return string(b)
}

// exited reports whether the process ended within d, and its exit code.
func (p *proc) exited(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

// waitReady polls GET /readyz until it answers 200, for at most 60 s (a bound for a loaded machine
// under -race, not a speed claim), failing at once if the process exits first.
func (p *proc) waitReady() {
	p.t.Helper()
	hc := &http.Client{Transport: testhttp.Client.Transport, Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := hc.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.release()
				return
			}
		}
		select {
		case <-p.done:
			p.t.Fatalf("ony serve exited with %d before it was ready", p.code)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("ony serve at %s not ready within 60s (last error: %v)", p.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and requires a clean exit within 15 s.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	code, ok := p.exited(15 * time.Second)
	if !ok {
		p.t.Fatalf("ony serve did not exit within 15s of SIGTERM")
	}
	if code != 0 {
		p.t.Fatalf("ony serve exited with %d after SIGTERM, want 0", code)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatalf("SIGKILL: %v", err)
	}
	<-p.done
}

// bootstrap is what `ony serve` prints on stdout when it creates the first organization.
type bootstrap struct {
	OrgID, Email, Password, Token, DeviceID string
}

var (
	reOrg      = regexp.MustCompile(`Ony created its first organization "[^"]*" \(([0-9a-f-]{36})\)`)
	reEmail    = regexp.MustCompile(`(?m)^\s*Admin email:\s+(\S+)\s*$`)
	rePassword = regexp.MustCompile(`(?m)^\s*Admin password:\s+(\S+)\s+\(shown once\)\s*$`)
	reToken    = regexp.MustCompile(`(?m)^\s*Agent token:\s+(\S+)\s+\(shown once; device ([0-9a-f-]{36})\)\s*$`)
)

func parseBootstrap(t *testing.T, stdout string) bootstrap {
	t.Helper()
	for _, marker := range []string{"Ony created its first organization", "Admin email:", "Admin password:", "Agent token:"} {
		if n := strings.Count(stdout, marker); n != 1 {
			t.Fatalf("stdout has %q %d times, want exactly once:\n%s", marker, n, stdout)
		}
	}
	var b bootstrap
	m := reOrg.FindStringSubmatch(stdout)
	m2 := reEmail.FindStringSubmatch(stdout)
	m3 := rePassword.FindStringSubmatch(stdout)
	m4 := reToken.FindStringSubmatch(stdout)
	if m == nil || m2 == nil || m3 == nil || m4 == nil {
		t.Fatalf("cannot parse the bootstrap output:\n%s", stdout)
	}
	b.OrgID, b.Email, b.Password, b.Token, b.DeviceID = m[1], m2[1], m3[1], m4[1], m4[2]
	if !strings.HasPrefix(b.Token, "ony_dev_") {
		t.Fatalf("agent token %q lacks the ony_dev_ prefix", b.Token)
	}
	return b
}

func newClient(t *testing.T, baseURL, token string) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newPersonClient returns a client for people that keeps its session cookie in hc's jar, so a second
// client sharing hc carries the same session (cookies ignore the port, so this works across servers
// on 127.0.0.1).
func newPersonClient(t *testing.T, baseURL string, hc *http.Client) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, "", &client.Options{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newJarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: testhttp.Client.Transport, Timeout: 90 * time.Second, Jar: jar}
}

// login returns a client for a person, signed in.
func login(t *testing.T, ctx context.Context, baseURL, email, password string) *client.Client {
	t.Helper()
	return loginWith(t, ctx, newJarClient(t), baseURL, email, password)
}

func loginWith(t *testing.T, ctx context.Context, hc *http.Client, baseURL, email, password string) *client.Client {
	t.Helper()
	c := newPersonClient(t, baseURL, hc)
	me, err := c.Login(ctx, email, password)
	if err != nil {
		t.Fatalf("login as %s: %v", email, err)
	}
	if me.Email != email {
		t.Fatalf("login: signed in as %q, want %q", me.Email, email)
	}
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func mustNotContain(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			t.Errorf("%s contains %q, which it must not:\n%s", what, sub, s)
		}
	}
}

// mustNotContainCode is mustNotContain for a short code of a few characters,
// which turns up by chance inside request ids, UUIDs and hashes; it counts
// only an occurrence that stands on its own.
func mustNotContainCode(t *testing.T, what, s, code string) {
	t.Helper()
	re := regexp.MustCompile(`(^|[^0-9A-Za-z-])` + regexp.QuoteMeta(code) + `($|[^0-9A-Za-z-])`)
	if loc := re.FindStringIndex(s); loc != nil {
		t.Errorf("%s contains the code %q (at %q), which it must not:\n%s", what, code, s[loc[0]:loc[1]], s)
	}
}
