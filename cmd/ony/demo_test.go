package main

// Tests of `ony demo`: the built binary runs the whole demo with its waits scaled down, and its output
// must show what the demo promises a newcomer — simulated sends, a ladder climbing, a call nobody
// answers, a redial that is answered and a simulated person deciding on it — plus a sign-in recipe
// that really works. The engine's own tests are in internal/demo.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// demoHeavy takes two slots in heavy while a demo starts: it hashes four passwords, on both cores of a
// small machine. It returns the function that gives them back (once).
func demoHeavy() func() {
	demoHeavyMu.Lock() // two takers of two slots must not each hold one and wait for the other
	heavy <- struct{}{}
	heavy <- struct{}{}
	demoHeavyMu.Unlock()
	return sync.OnceFunc(func() { <-heavy; <-heavy })
}

var demoHeavyMu sync.Mutex

// demoProc is a running `ony demo`, its output going to files.
type demoProc struct {
	t                *testing.T
	cmd              *exec.Cmd
	outPath, errPath string
	done             chan struct{}
	code             int
}

func startDemo(t *testing.T, args ...string) *demoProc {
	t.Helper()
	dir := t.TempDir()
	p := &demoProc{t: t, outPath: filepath.Join(dir, "stdout"), errPath: filepath.Join(dir, "stderr"), done: make(chan struct{})}
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
	p.cmd = exec.Command(onyBin, append([]string{"demo", "--listen", "127.0.0.1:0"}, args...)...)
	p.cmd.Env = env(nil)
	p.cmd.Dir = t.TempDir()
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		checkNoRace(t, p.stderr())
		if t.Failed() {
			t.Logf("ony demo:\n--- stdout:\n%s--- stderr:\n%s", p.stdout(), p.stderr())
		}
	})
	return p
}

func (p *demoProc) stdout() string { return readFile(p.t, p.outPath) }
func (p *demoProc) stderr() string { return readFile(p.t, p.errPath) }

// waitFor polls stdout until it matches re, and returns the submatches; it fails the test if the
// process exits first or d passes.
func (p *demoProc) waitFor(re *regexp.Regexp, d time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if m := re.FindStringSubmatch(p.stdout()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(p.stdout()); m != nil {
				return m
			}
			p.t.Fatalf("ony demo exited with %d before its output matched %s", p.code, re)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("ony demo's output did not match %s within %s", re, d)
		}
	}
}

// exit waits for the process to end by itself within d and returns its exit code.
func (p *demoProc) exit(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.t.Fatalf("ony demo did not exit within %s", d)
		return -1
	}
}

var (
	reDemoURL      = regexp.MustCompile(`(?m)^\s*Ony:\s+(http://127\.0\.0\.1:\d+)\s`)
	reDemoPassword = regexp.MustCompile(`(?m)^\s*Admin password:\s+(\S+)\s`)
	reDemoFirst    = regexp.MustCompile(`(?m)^\[demo\] #1 the agent asks: shell\.exec .*; id (\S+)$`)
)

// TestDemo runs the demo with its ladders' waits scaled to a twentieth. Of four sample handoffs, the
// first is decided through the API with the printed sign-in recipe, the high and critical ones by
// simulated people on a redialled call; the fourth is still pending when Ctrl-C (SIGINT) stops the
// demo, which must shut down cleanly and remove its temporary data.
func TestDemo(t *testing.T) {
	t.Parallel()
	start := time.Now()
	release := demoHeavy()
	defer release()
	// The climb to the answered redial takes 15 to 25s (a 10s redial gap and the job scheduler's 5s
	// ticks); --duration, counted from when the demo is ready, only bounds a run gone wrong.
	p := startDemo(t, "--interval", "300ms", "--count", "4", "--wait-scale", "0.05", "--duration", "45s")
	url := p.waitFor(reDemoURL, 40*time.Second)[1]
	release()
	readyAt := time.Now()
	t.Logf("the demo was ready after %s", readyAt.Sub(start).Round(time.Millisecond))
	banner := p.stdout()
	password := reDemoPassword.FindStringSubmatch(banner)
	dataDir := regexp.MustCompile(`SQLite in (\S+),`).FindStringSubmatch(banner)
	if password == nil || dataDir == nil {
		t.Fatalf("the banner names no admin password or data directory:\n%s", banner)
	}
	mustContain(t, "the banner", banner, "SIMULATED", "Admin email:     admin@localhost",
		"-X POST "+url+"/v1/auth/login -H 'Content-Type: application/json'",
		`-d '{"email":"admin@localhost","password":"`+password[1]+`"}'`,
		"-X POST "+url+"/v1/handoffs/$ID/decide -H 'Content-Type: application/json'",
		"critical-production (risk high/critical, env=prod*)", "phone +1••••••0001",
		// The offsets the ladders really use at --wait-scale 0.05: the redial gap stays 10s, and the
		// call rung waits for it.
		"+400ms text: sms", "+800ms call: call", "+10.8s redial: call", "+40.8s the ladder ends: the handoff expires",
		"no rungs left: it waits in the console inbox")
	var logFile string
	if m := regexp.MustCompile(`(?m)^\s*Server log:\s+(\S+)`).FindStringSubmatch(banner); m != nil {
		logFile = m[1]
		t.Cleanup(func() { os.Remove(logFile) })
	} else {
		t.Errorf("the banner names no server log file")
	}

	// The printed recipe: sign in with JSON, keep the cookie, decide with JSON.
	// Generous bounds: a real PBKDF2 login and the demo's own four hashes under -race, beside the other
	// suites on two cores.
	ctx := testCtx(t, 90*time.Second)
	id := p.waitFor(reDemoFirst, 30*time.Second)[1]
	admin := loginWith(t, ctx, newJarClient(t), url, "admin@localhost", password[1])
	if _, err := admin.Decide(ctx, id, "approve", "from the demo test"); err != nil {
		t.Fatalf("decide #1 as the printed admin: %v", err)
	}

	p.waitFor(regexp.MustCompile(`(?m)^\[demo\] #2 deploy \(high\) approved by \w+ via call `), 75*time.Second)
	p.waitFor(regexp.MustCompile(`(?m)^\[demo\] #3 db\.migrate \(critical\) denied by \w+ via call `), 30*time.Second)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(15 * time.Second); code != 0 {
		t.Fatalf("ony demo exited with %d after SIGINT, want 0", code)
	}
	out, logs := p.stdout(), p.stderr()
	for _, want := range []struct{ what, re string }{
		{"a simulated chat message", `(?m)^\[demo\] #\d \S+ \(\w+\) → ladder \S+: \+\d+s rung 1/3 \(chat(, due \+\S+)?\): slack → \w+ \(SIMULATED\) sent$`},
		{"a climb to a later rung", `(?m)^\[demo\] #\d \S+ \(\w+\) → ladder critical-production: \+\d+s rung 2/3 \(text(, due \+\S+)?\): sms → \w+ \(SIMULATED\) sent$`},
		{"a call nobody answered", `(?m)^\[demo\] #\d \S+ \(\w+\) → ladder critical-production: \+\d+s rung 3/3 \(call(, due \+\S+)?\): call → \w+ \(SIMULATED\) no_answer$`},
		{"an answered redial", `(?m)^\[demo\] #\d \S+ \(\w+\) → ladder critical-production: \+\d+s rung 3/3 \(call\): call → \w+ \(SIMULATED\) answered, redial 1$`},
		{"a simulated person deciding", `(?m)^\[demo\] (Ana|Ben) \(SIMULATED\) picks up the redial about the \S+ and presses [12]: (approve|deny)$`},
		{"the deploy decided on the call", `(?m)^\[demo\] #2 deploy \(high\) approved by (Ana|Ben) via call \(\+\d+s\)$`},
		{"the migration refused on the call", `(?m)^\[demo\] #3 db\.migrate \(critical\) denied by (Ana|Ben) via call \(\+\d+s\)$`},
		{"the first handoff decided through the API", `(?m)^\[demo\] #1 shell\.exec \(low\) approved by admin via api \(\+\d+s\)$`},
		{"the fourth handoff posted", `(?m)^\[demo\] #4 the agent asks: shell\.exec `},
	} {
		if !regexp.MustCompile(want.re).MatchString(out) {
			t.Errorf("stdout shows no %s (want a line matching %s)", want.what, want.re)
		}
	}
	if !strings.HasSuffix(out, "[demo] stopping\n[demo] the server's log is in "+logFile+"\n") {
		t.Errorf("after SIGINT, stdout does not end with the stop line and where the log is")
	}
	// The timeline alone on the terminal: the server's log went to its file.
	t.Logf("stdout: %d lines; stderr: %d lines", strings.Count(out, "\n"), strings.Count(logs, "\n"))
	if logs != "" {
		t.Errorf("stderr has %d lines; the server's log belongs in its file (or on stderr with --verbose)", strings.Count(logs, "\n"))
	}
	if !regexp.MustCompile(`(?m)^\[demo\] #\d shell\.exec \(low\) → ladder default has no rungs left: from \+\S+ the handoff waits in the console inbox until its timeout \(\+1m\)`).MatchString(out) {
		t.Errorf("stdout does not explain the low-risk handoff left to its own timeout")
	}
	if logFile != "" {
		logs = readFile(t, logFile)
	}
	mustContain(t, "the log", logs, `msg="SIMULATED call"`, `msg="SIMULATED slack"`, "result=no_answer", "result=answered", "shutting down")
	// Phone numbers are personal data: masked in the banner, absent from the log.
	mustNotContain(t, "the demo's output", out+logs, "+15550100001", "+15550100002")
	mustNotContain(t, "the log", logs, password[1])
	if _, err := os.Stat(dataDir[1]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary data directory %s is still there (%v)", dataDir[1], err)
	}
	t.Logf("the demo ran for %s after it was ready", time.Since(readyAt).Round(time.Millisecond))
}

// TestDemoFlags checks the demo's flags in process: bad values are usage errors, and an earlier
// run's data directory is refused rather than reused (its one-time secrets are gone).
func TestDemoFlags(t *testing.T) {
	t.Parallel()
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "ony.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--wait-scale", "0"}, "--wait-scale must be between 0.01 and 10"},
		{[]string{"--wait-scale", "11"}, "--wait-scale must be between 0.01 and 10"},
		{[]string{"--interval", "10ms"}, "--interval must be at least 100ms"},
		{[]string{"--count", "-1"}, "--count must be"},
		{[]string{"--duration", "-1s"}, "--duration must be"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--data-dir", used}, "holds the database of an earlier run"},
		{[]string{"--verbose", "--log", filepath.Join(used, "x.log")}, "choose one"},
	} {
		var stdout, stderr bytes.Buffer
		err := cmdDemo(context.Background(), tt.args, &stdout, &stderr)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(ee.msg, tt.want) {
			t.Errorf("ony demo %s: %v, want a usage error with %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}
