package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// harness holds what every scenario shares: the built binary, a scratch directory and the services.
type harness struct {
	repo    string // repository root
	dir     string // scratch directory, removed at the end
	bin     string // the ony binary under test
	pgBase  string // PostgreSQL URL of a database we may CREATE DATABASE from
	redis   string // Redis URL for the across-replicas case
	extra   map[string]string
	profile string // directory for CPU profiles; empty for none
	dbSeq   int
	srvSeq  int
	quick   bool
	keep    bool // keep the scratch directory and the databases
	mu      sync.Mutex
	deaths  []string // servers that exited before they were stopped
	log     func(format string, args ...any)
}

// build compiles ./cmd/ony from the repository root as the Dockerfile builds a release, minus the
// version stamp: static (no libc mapped in: 1.3–1.7 MiB of an idle server's RSS, three pairs),
// paths trimmed, symbols stripped.
func (h *harness) build(ctx context.Context) error {
	h.bin = filepath.Join(h.dir, "ony")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", h.bin, "./cmd/ony")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = h.repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/ony: %w", err)
	}
	return nil
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// environ is a subprocess environment: PATH and HOME plus the given variables and the -env extras.
func (h *harness) environ(vars map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range h.extra {
		if _, set := vars[k]; !set {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// server is one running `ony serve`.
type server struct {
	name     string
	cmd      *exec.Cmd
	url      string
	metrics  string // host:port of ONY_METRICS_LISTEN when set
	stdout   string // file paths
	stderr   string
	started  time.Time
	ready    time.Time
	done     chan struct{}
	exitCode int
	state    string // how it exited, once done is closed
	h        *harness
}

// serve starts `ony serve` with vars (ONY_LISTEN is chosen here) and waits until /readyz answers
// 200, for at most a minute.
func (h *harness) serve(ctx context.Context, vars map[string]string) (*server, error) {
	h.srvSeq++
	v := map[string]string{"ONY_LOG_LEVEL": "warn"}
	for k, x := range vars {
		v[k] = x
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	v["ONY_LISTEN"] = addr
	s := &server{name: fmt.Sprintf("serve%d", h.srvSeq), url: "http://" + addr, done: make(chan struct{}), h: h}
	if h.profile != "" {
		if s.metrics, err = freeAddr(); err != nil {
			return nil, err
		}
		v["ONY_METRICS_LISTEN"] = s.metrics
	}
	s.stdout = filepath.Join(h.dir, s.name+".stdout")
	s.stderr = filepath.Join(h.dir, s.name+".stderr")
	out, err := os.Create(s.stdout)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	errf, err := os.Create(s.stderr)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	s.cmd = exec.Command(h.bin, "serve")
	s.cmd.Env = h.environ(v)
	s.cmd.Dir = h.dir
	s.cmd.Stdout, s.cmd.Stderr = out, errf
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		s.exitCode = s.cmd.ProcessState.ExitCode()
		s.state = s.cmd.ProcessState.String()
		close(s.done)
	}()
	if err := s.waitReady(ctx, time.Minute); err != nil {
		s.kill()
		return nil, fmt.Errorf("%w\n--- stderr:\n%s", err, tail(s.stderr, 2000))
	}
	return s, nil
}

// waitReady polls /readyz every 2 ms: the poll interval bounds how precisely cold start is measured.
func (s *server) waitReady(ctx context.Context, limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.ready = time.Now()
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("ony serve exited with %d before it was ready", s.exitCode)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ony serve not ready within %s (last error: %v)", limit, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits up to 30 s, then kills. A server that had already exited is
// reported: whatever was measured on it after that point is void.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.done:
		s.h.mu.Lock()
		s.h.deaths = append(s.h.deaths, fmt.Sprintf("%s (%s) exited on its own (%s) before the harness stopped it; stderr: %s",
			s.name, s.url, s.state, tail(s.stderr, 600)))
		s.h.mu.Unlock()
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.kill()
	}
}

func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// rssMiB reads VmRSS from /proc/<pid>/status.
func (s *server) rssMiB() (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// bootstrap is what `ony serve` prints on stdout when it creates the first organization.
type bootstrap struct {
	OrgID, Email, Password, Token string
}

var (
	reOrg      = regexp.MustCompile(`Ony created its first organization "[^"]*" \(([0-9a-f-]{36})\)`)
	reEmail    = regexp.MustCompile(`(?m)^\s*Admin email:\s+(\S+)\s*$`)
	rePassword = regexp.MustCompile(`(?m)^\s*Admin password:\s+(\S+)\s+\(shown once\)\s*$`)
	reToken    = regexp.MustCompile(`(?m)^\s*Agent token:\s+(\S+)\s+\(shown once`)
)

func (s *server) bootstrap() (bootstrap, error) {
	b, err := os.ReadFile(s.stdout)
	if err != nil {
		return bootstrap{}, err
	}
	out := string(b)
	m, m2, m3, m4 := reOrg.FindStringSubmatch(out), reEmail.FindStringSubmatch(out), rePassword.FindStringSubmatch(out), reToken.FindStringSubmatch(out)
	if m == nil || m2 == nil || m3 == nil || m4 == nil {
		return bootstrap{}, fmt.Errorf("cannot parse the bootstrap output of ony serve:\n%s", out)
	}
	return bootstrap{OrgID: m[1], Email: m2[1], Password: m3[1], Token: m4[1]}, nil
}

// pgDB is a fresh PostgreSQL database, dropped by drop.
type pgDB struct {
	h    *harness
	name string
	URL  string
}

// createDB makes a fresh database with psql (the harness has no PostgreSQL driver of its own).
func (h *harness) createDB(ctx context.Context) (*pgDB, error) {
	h.dbSeq++
	name := fmt.Sprintf("onybench_%d_%d", os.Getpid(), h.dbSeq)
	if _, err := h.psql(ctx, h.pgBase, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	u, err := url.Parse(h.pgBase)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &pgDB{h: h, name: name, URL: u.String()}, nil
}

func (d *pgDB) drop() {
	if d == nil {
		return
	}
	if d.h.keep {
		d.h.log("database %s kept", d.name)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.h.psql(ctx, d.h.pgBase, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		d.h.log("drop %s: %v", d.name, err)
	}
}

func (h *harness) psql(ctx context.Context, dbURL, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, "psql", dbURL, "-v", "ON_ERROR_STOP=1", "-tAq", "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w: %s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// runOny runs a short ony command with vars and returns its stdout and how long it took.
func (h *harness) runOny(ctx context.Context, vars map[string]string, args ...string) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.environ(vars)
	cmd.Dir = h.dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		return string(out), d, fmt.Errorf("ony %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), d, nil
}
