// Command onybench measures a real `ony serve` on loopback: ingest against pgbench, escalation
// latency, lateness and throughput, decision → waiting agent on one replica and across two, audit
// verification and footprint, on PostgreSQL and SQLite. `make bench` runs it in full and writes the
// performance section of docs/benchmarks.md; `make bench-quick` runs every scenario once at tiny sizes
// to check that the harness works, and prints the section instead.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

var scenarioNames = []string{"ingest", "firstrung", "lateness", "throughput", "decide", "audit", "footprint"}

func main() {
	os.Exit(run())
}

func run() int {
	mode := flag.String("mode", "full", "full (the published figures) or quick (tiny sizes, checks the harness)")
	only := flag.String("scenario", "", "comma-separated scenarios to run: "+strings.Join(scenarioNames, ", ")+" (default all)")
	dialect := flag.String("dialect", "both", "postgres, sqlite or both")
	runs := flag.Int("runs", 0, "runs per scenario (default 3 in full mode, 1 in quick)")
	repo := flag.String("repo", "", "repository root (default: found upwards from the working directory)")
	doc := flag.String("doc", "", "document whose onybench section is replaced (default docs/benchmarks.md in full mode; none in quick mode)")
	out := flag.String("out", "", "also write the section to this file (- for stdout)")
	profile := flag.String("profile", "", "directory for CPU profiles taken during ingest, the drain and decide (needs pprof on ONY_METRICS_LISTEN)")
	keep := flag.Bool("keep", false, "keep the scratch directory (server logs, data) and the PostgreSQL databases")
	latenessN := flag.Int("lateness-n", 0, "pending handoffs in the lateness scenario (default 5000 full, 100 quick)")
	pending := flag.Int("pending", 0, "pending handoffs in the decision scenario (default 20000 full, 300 quick)")
	fillLimit := flag.Duration("fill-limit", 0, "longest a fill of pending handoffs may take before the scenario goes on with fewer (default 3m full, 30s quick)")
	var extra multiFlag
	flag.Var(&extra, "env", "extra ONY_ variable (or GOGC, GOMEMLIMIT) for every server, KEY=VALUE (repeatable), e.g. -env ONY_JOBS_POLL_INTERVAL=50ms")
	flag.Parse()

	sz := fullSizes
	quick := *mode == "quick"
	switch {
	case quick:
		sz = quickSizes
	case *mode != "full":
		fmt.Fprintln(os.Stderr, "onybench: -mode must be full or quick")
		return 2
	}
	if *runs > 0 {
		sz.Runs = *runs
	}
	if *latenessN > 0 {
		sz.LatenessN = *latenessN
	}
	if *pending > 0 {
		sz.DecidePending = *pending
	}
	if *fillLimit > 0 {
		sz.FillLimit = *fillLimit
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(scenarioNames, s) {
			fmt.Fprintf(os.Stderr, "onybench: unknown scenario %q (have %s)\n", s, strings.Join(scenarioNames, ", "))
			return 2
		}
		want[s] = true
	}
	if len(want) == 0 {
		for _, s := range scenarioNames {
			want[s] = true
		}
	}
	if *dialect != "both" && *dialect != "postgres" && *dialect != "sqlite" {
		fmt.Fprintln(os.Stderr, "onybench: -dialect must be postgres, sqlite or both")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "onybench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	root, err := findRepo(*repo)
	if err != nil {
		logf("%v", err)
		return 2
	}
	h := &harness{repo: root, log: logf, profile: *profile, quick: quick, keep: *keep, extra: map[string]string{}}
	for _, kv := range extra {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "ONY_") && k != "GOGC" && k != "GOMEMLIMIT" {
			logf("-env %q: want ONY_NAME=value (or GOGC, GOMEMLIMIT)", kv)
			return 2
		}
		h.extra[k] = v
	}
	if h.profile != "" {
		if err := os.MkdirAll(h.profile, 0o755); err != nil {
			logf("%v", err)
			return 2
		}
	}
	h.pgBase = os.Getenv("ONY_TEST_POSTGRES_URL")
	if h.pgBase == "" {
		h.pgBase = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	h.redis = os.Getenv("ONY_TEST_REDIS_URL")
	if h.redis == "" {
		h.redis = "redis://127.0.0.1:6379/0"
	}
	if h.dir, err = os.MkdirTemp("", "onybench-"); err != nil {
		logf("%v", err)
		return 1
	}
	if *keep {
		logf("scratch directory %s kept", h.dir)
	} else {
		defer os.RemoveAll(h.dir)
	}

	began := time.Now()
	logf("building ./cmd/ony in %s", root)
	if err := h.build(ctx); err != nil {
		logf("%v", err)
		return 1
	}
	m := machine(ctx, h)
	rec := &recorder{}
	ds := dialects(*dialect)
	step := func(name, d string, f func() error) {
		if ctx.Err() != nil {
			return
		}
		t0 := time.Now()
		logf("%s (%s)...", name, d)
		err := f()
		h.mu.Lock()
		deaths := h.deaths
		h.deaths = nil
		h.mu.Unlock()
		if err == nil && len(deaths) > 0 {
			err = errors.New(strings.Join(deaths, "; "))
		}
		if err != nil {
			logf("%s (%s) failed: %v", name, d, err)
			rec.fail(name+" ("+d+")", err)
			return
		}
		logf("%s (%s) done in %s", name, d, time.Since(t0).Round(time.Millisecond))
	}
	for _, d := range ds {
		if want["ingest"] {
			for r := range sz.Runs {
				step(fmt.Sprintf("ingest run %d", r+1), d, func() error { return h.ingest(ctx, rec, sz, d, r) })
			}
		}
	}
	for _, d := range ds {
		if want["firstrung"] {
			for r := range sz.Runs {
				step(fmt.Sprintf("create → first rung run %d", r+1), d, func() error { return h.firstRung(ctx, rec, sz, d) })
			}
		}
	}
	for _, d := range ds {
		if want["lateness"] {
			for r := range sz.Runs {
				step(fmt.Sprintf("rung lateness run %d", r+1), d, func() error { return h.lateness(ctx, rec, sz, d) })
				step(fmt.Sprintf("%d at once run %d", sz.AtOnceN, r+1), d, func() error { return h.atOnce(ctx, rec, sz, d) })
			}
		}
	}
	for _, d := range ds {
		if want["throughput"] {
			for r := range sz.Runs {
				step(fmt.Sprintf("escalation throughput run %d", r+1), d, func() error { return h.throughput(ctx, rec, sz, d) })
			}
		}
	}
	for _, d := range ds {
		if want["decide"] || want["audit"] {
			step("decision → waiter and audit verify", d, func() error { return h.decide(ctx, rec, sz, d, want["audit"], want["decide"]) })
		}
	}
	for _, d := range ds {
		if want["footprint"] {
			for r := range sz.Runs {
				step(fmt.Sprintf("footprint run %d", r+1), d, func() error { return h.footprint(ctx, rec, sz, d) })
			}
		}
	}
	if ctx.Err() != nil {
		logf("interrupted")
		return 1
	}
	took := time.Since(began)
	section := renderSection(m, sz, *mode, os.Args[1:], rec.figures(), rec.errs, took)

	docPath := *doc
	if docPath == "" && !quick && *only == "" && *dialect == "both" {
		docPath = filepath.Join(root, "docs", "benchmarks.md")
	}
	if docPath != "" {
		old, err := os.ReadFile(docPath)
		if err != nil {
			logf("%v", err)
			return 1
		}
		updated, err := replaceSection(string(old), section)
		if err != nil {
			logf("%s: %v", docPath, err)
			return 1
		}
		if err := os.WriteFile(docPath, []byte(updated), 0o644); err != nil {
			logf("%v", err)
			return 1
		}
		logf("wrote the performance section of %s", docPath)
	}
	switch {
	case *out == "-" || (*out == "" && docPath == ""):
		fmt.Print(section)
	case *out != "":
		if err := os.WriteFile(*out, []byte(section), 0o644); err != nil {
			logf("%v", err)
			return 1
		}
	}
	logf("finished in %s", took.Round(time.Second))
	if len(rec.errs) > 0 {
		for _, e := range rec.errs {
			logf("error: %s", e)
		}
		// In quick mode a missing pgbench is reported, not fatal: the rest of the harness was checked.
		if quick && len(rec.errs) == 1 && strings.HasPrefix(rec.errs[0], "ingest: pgbench") {
			return 0
		}
		return 1
	}
	return 0
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// findRepo returns dir, or the nearest directory upwards from the working directory whose go.mod is
// Ony's.
func findRepo(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/ony-ai/ony\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no Ony repository above %s; give -repo", wd)
		}
	}
}

// machineInfo describes where the figures were measured.
type machineInfo struct {
	nproc           int
	cpu, ram, kern  string
	goVersion       string
	pgVersion       string
	pgbench         string
	loadAvg, commit string
}

func machine(ctx context.Context, h *harness) machineInfo {
	m := machineInfo{nproc: runtime.NumCPU(), goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	m.cpu = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.ram = fmt.Sprintf("%.1f GiB", n/1024/1024)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kern = "Linux " + strings.TrimSpace(string(b))
	}
	m.loadAvg = loadAvg()
	if v, err := h.psql(ctx, h.pgBase, "SHOW server_version"); err == nil {
		m.pgVersion = v
	} else {
		m.pgVersion = "unavailable"
	}
	if b, err := exec.CommandContext(ctx, "pgbench", "--version").Output(); err == nil {
		m.pgbench = strings.TrimSpace(string(b))
	} else {
		m.pgbench = "not installed"
	}
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = h.repo
	if b, err := cmd.Output(); err == nil {
		m.commit = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAvg is the 1, 5 and 15 minute load average, or "" where /proc does not say.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}
