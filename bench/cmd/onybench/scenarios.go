package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sizes scale every scenario; full and quick are the two presets.
type sizes struct {
	Runs          int
	Conc          []int         // closed-loop agents
	ClosedDur     time.Duration // per closed loop (and per pgbench run)
	OpenDur       time.Duration
	SQLiteOpen    float64 // creates/s of SQLite's open loop
	RungRate      float64 // creates/s for create → first rung
	RungDur       time.Duration
	LatenessN     int           // pending handoffs whose second rung is timed
	LatenessWait  time.Duration // the first rung's wait: when the second falls due
	AtOnceN       int
	BurstN        int
	BurstWait     time.Duration // the first rung's wait in the throughput scenario: at least the time to create BurstN
	DecidePending int           // handoffs pending in the org the decisions are made in
	DecideSamples int           // decisions per run and path
	FillConc      int
	IdleSettle    time.Duration
	IdleLong      time.Duration // a second reading of idle RSS, where it settles
	FillLimit     time.Duration // longest a fill may take; a slower server gets a smaller fill
}

var fullSizes = sizes{
	Runs: 3, Conc: []int{8, 32}, ClosedDur: 5 * time.Second, OpenDur: 5 * time.Second, SQLiteOpen: 500,
	RungRate: 100, RungDur: 5 * time.Second, LatenessN: 5000, LatenessWait: 10 * time.Second, AtOnceN: 1000,
	BurstN: 1000, BurstWait: 10 * time.Second, DecidePending: 20000, DecideSamples: 100, FillConc: 16, IdleSettle: 3 * time.Second,
	IdleLong: 30 * time.Second, FillLimit: 3 * time.Minute,
}

var quickSizes = sizes{
	Runs: 1, Conc: []int{2, 8}, ClosedDur: time.Second, OpenDur: time.Second, SQLiteOpen: 100,
	RungRate: 50, RungDur: time.Second, LatenessN: 100, LatenessWait: time.Second, AtOnceN: 50,
	BurstN: 100, BurstWait: time.Second, DecidePending: 300, DecideSamples: 10, FillConc: 16, IdleSettle: 500 * time.Millisecond,
	IdleLong: time.Second, FillLimit: 30 * time.Second,
}

// recorder collects figures across runs, keeping the order in which they were first seen.
type recorder struct {
	figs []*Figure
	errs []string
}

func (r *recorder) add(scenario, name, dialect, unit string, t *Target, v float64) {
	for _, f := range r.figs {
		if f.Scenario == scenario && f.Name == name && f.Dialect == dialect {
			f.Runs = append(f.Runs, v)
			return
		}
	}
	r.figs = append(r.figs, &Figure{Scenario: scenario, Name: name, Dialect: dialect, Unit: unit, Runs: []float64{v}, Target: t})
}

func (r *recorder) fail(what string, err error) {
	r.errs = append(r.errs, fmt.Sprintf("%s: %v", what, err))
}

func (r *recorder) figures() []Figure {
	out := make([]Figure, len(r.figs))
	for i, f := range r.figs {
		out[i] = *f
	}
	return out
}

func ge(v float64) *Target { return &Target{Op: ">=", Limit: v} }
func lt(v float64) *Target { return &Target{Op: "<", Limit: v} }
func le(v float64) *Target { return &Target{Op: "<=", Limit: v} }

// instance is one Ony installation: its data, its database, one or more replicas and its bootstrap
// credentials.
type instance struct {
	h        *harness
	dialect  string
	vars     map[string]string
	db       *pgDB
	replicas []*server
	boot     bootstrap
	agent    *api // device token, on replica 0
}

// webhookLadder writes a default ladder whose rungs all post to the sink; waits are the rungs' waits.
func (h *harness) webhookLadder(waits ...time.Duration) (string, error) {
	var b strings.Builder
	b.WriteString("name: default\ndefault: true\nsteps:\n")
	for i, w := range waits {
		fmt.Fprintf(&b, "  - name: rung%d\n    channels: [webhook]\n    targets: [webhook:sink]\n    wait: %s\n", i, w)
	}
	b.WriteString("end: wait\n")
	dir, err := os.MkdirTemp(h.dir, "ladders-")
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(b.String()), 0o600)
}

const webhookSecret = "whsec_b25ieWJlbmNoLXdlYmhvb2stc2VjcmV0LTAxMjM0NTY3ODk=" // bench only

// newInstance starts a fresh installation on dialect with n replicas (n > 1 needs PostgreSQL and uses
// Redis). A non-nil sink gets a ladder of waits posting to it.
func (h *harness) newInstance(ctx context.Context, dialect string, n int, sk *sink, waits ...time.Duration) (*instance, error) {
	dataDir, err := os.MkdirTemp(h.dir, "data-")
	if err != nil {
		return nil, err
	}
	in := &instance{h: h, dialect: dialect, vars: map[string]string{"ONY_DATA_DIR": dataDir}}
	if dialect == "postgres" {
		if in.db, err = h.createDB(ctx); err != nil {
			return nil, err
		}
		in.vars["ONY_DATABASE_URL"] = in.db.URL
	}
	if n > 1 {
		in.vars["ONY_REDIS_URL"] = h.redis
		in.vars["ONY_REDIS_PREFIX"] = fmt.Sprintf("onybench%d-%d:", os.Getpid(), h.dbSeq)
	}
	if sk != nil {
		dir, err := h.webhookLadder(waits...)
		if err != nil {
			return nil, err
		}
		in.vars["ONY_ESCALATION_LADDERS_DIR"] = dir
		in.vars["ONY_ESCALATION_WEBHOOKS"] = "sink=" + sk.URL
		in.vars["ONY_ESCALATION_WEBHOOK_SECRET"] = webhookSecret
	}
	for i := range n {
		s, err := h.serve(ctx, in.vars)
		if err != nil {
			in.close()
			return nil, err
		}
		in.replicas = append(in.replicas, s)
		if i == 0 {
			if in.boot, err = s.bootstrap(); err != nil {
				in.close()
				return nil, err
			}
		}
	}
	in.agent = &api{base: in.replicas[0].url, token: in.boot.Token, hc: newHTTPClient(30 * time.Second)}
	return in, nil
}

// person signs the admin in on replica i.
func (in *instance) person(ctx context.Context, i int) (*api, error) {
	p := &api{base: in.replicas[i].url, hc: newHTTPClient(30 * time.Second)}
	return p, p.login(ctx, in.boot.Email, in.boot.Password)
}

func (in *instance) stopServers() {
	for _, s := range in.replicas {
		s.stop()
	}
	in.replicas = nil
}

func (in *instance) close() {
	in.stopServers()
	in.db.drop()
}

// dialects are the ones the flags chose, in a fixed order.
func dialects(sel string) []string {
	switch sel {
	case "postgres", "sqlite":
		return []string{sel}
	}
	return []string{"postgres", "sqlite"}
}

// --- 1 and 2: ingest ---

const pgbenchScript = `BEGIN;
INSERT INTO bench_handoffs (org_id, body) VALUES ('00000000-0000-0000-0000-000000000001', repeat('h', 2048));
INSERT INTO bench_leaves (org_id, body) VALUES ('00000000-0000-0000-0000-000000000001', repeat('a', 240));
INSERT INTO bench_jobs (kind, body) VALUES ('escalation.step', repeat('j', 350));
COMMIT;
`

const pgbenchTables = `CREATE TABLE bench_handoffs (id bigserial PRIMARY KEY, org_id uuid NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_leaves (id bigserial PRIMARY KEY, org_id uuid NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE bench_jobs (id bigserial PRIMARY KEY, kind text NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());`

var (
	reTPS    = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	reTxDone = regexp.MustCompile(`number of transactions actually processed: ([0-9]+)`)
)

// pgbench runs the equivalent script with conc clients for d on db and returns its transactions/s and
// how many it committed.
func (h *harness) pgbench(ctx context.Context, db *pgDB, conc int, d time.Duration) (tps float64, n int, err error) {
	script := filepath.Join(h.dir, "pgbench.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o600); err != nil {
		return 0, 0, err
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	jobs := min(conc, runtime.NumCPU())
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-M", "prepared", "-f", script, "-c", strconv.Itoa(conc), "-j", strconv.Itoa(jobs),
		"-T", strconv.Itoa(secs), db.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("pgbench: %w: %s", err, out)
	}
	m, c := reTPS.FindSubmatch(out), reTxDone.FindSubmatch(out)
	if m == nil || c == nil {
		return 0, 0, fmt.Errorf("pgbench: no tps or transaction count in its output:\n%s", out)
	}
	if tps, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return 0, 0, err
	}
	n, err = strconv.Atoi(string(c[1]))
	return tps, n, err
}

// addCPU records what a window of load (named by window) cost each party per unit of work (a
// create, a transaction), and how many cores were busy over it. A failed reading is logged and leaves
// the figures out.
func (h *harness) addCPU(rec *recorder, sc, window, unit, dialect string, before, after cpuUse, errB, errA error, units int, parties ...string) {
	d, wall := after.sub(before)
	if err := errors.Join(errB, errA); err != nil || units == 0 || wall <= 0 {
		h.log("%s: CPU not read (%v, %d done)", window, err, units)
		return
	}
	per := func(t time.Duration) float64 { return float64(t) / float64(time.Millisecond) / float64(units) }
	name := func(who string) string { return fmt.Sprintf("%s: CPU per %s, %s", window, unit, who) }
	for _, p := range parties {
		switch p {
		case "ony":
			rec.add(sc, name("Ony"), dialect, "ms", nil, per(d.ony))
		case "postgres":
			rec.add(sc, name("PostgreSQL"), dialect, "ms", nil, per(d.postgres))
		case "harness", "pgbench":
			rec.add(sc, name(p), dialect, "ms", nil, per(d.harness))
		}
	}
	all := d.ony + d.postgres + d.harness
	rec.add(sc, name("all"), dialect, "ms", nil, per(all))
	// Against the machine's cores: near nproc, the parties are sharing all of it.
	rec.add(sc, window+": cores busy", dialect, "cores", nil, float64(all)/float64(wall))
}

// profileDuring fetches a CPU profile of replica s for d into dir/name.pprof, if the server serves
// pprof on ONY_METRICS_LISTEN. Its absence is logged, not an error.
func (h *harness) profileDuring(ctx context.Context, s *server, d time.Duration, name string) func() {
	if h.profile == "" || s.metrics == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(1, int(d.Seconds()))
		hc := &http.Client{Timeout: d + 30*time.Second}
		resp, err := hc.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.metrics, secs))
		if err != nil {
			h.log("profile %s: no pprof on ONY_METRICS_LISTEN (%v); skipped", name, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			h.log("profile %s: /debug/pprof/profile answered %d; skipped", name, resp.StatusCode)
			return
		}
		path := filepath.Join(h.profile, name+".pprof")
		f, err := os.Create(path)
		if err != nil {
			h.log("profile %s: %v", name, err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			h.log("profile %s: %v", name, err)
			return
		}
		h.log("profile written to %s", path)
	}()
	return func() { <-done }
}

func (h *harness) ingest(ctx context.Context, rec *recorder, sz sizes, dialect string, run int) error {
	in, err := h.newInstance(ctx, dialect, 1, nil)
	if err != nil {
		return err
	}
	defer in.close()
	pg := dialect == "postgres"
	sc := "1. Ingest, PostgreSQL, one organization"
	if !pg {
		sc = "2. Ingest, SQLite"
	}
	hasPgbench := false
	if pg {
		if _, err := exec.LookPath("pgbench"); err == nil {
			hasPgbench = true
			if _, err := h.psql(ctx, in.db.URL, pgbenchTables); err != nil {
				return err
			}
		} else {
			rec.fail("ingest: pgbench", errors.New("pgbench is not installed; the PostgreSQL baseline and the open loop at half its rate are skipped"))
		}
	}
	bestPgbench := 0.0
	for _, conc := range sz.Conc {
		wait := func() {}
		if run == 0 && conc == slices.Max(sz.Conc) {
			wait = h.profileDuring(ctx, in.replicas[0], sz.ClosedDur, "ingest-"+dialect)
		}
		cpu0, errB := readCPU(in.replicas)
		r := closedLoop(ctx, in.agent, conc, sz.ClosedDur)
		wait()
		// The jobs the creates queued run on after the loop; they are part of what a create costs.
		settle(ctx, in.replicas, 10*time.Second)
		cpu1, errA := readCPU(in.replicas)
		if r.firstErr != nil {
			h.log("ingest %s c=%d: %d errors, %d timeouts; first: %v", dialect, conc, r.errors, r.timeouts, r.firstErr)
		}
		perSec := rate(len(r.lat), r.elapsed)
		var t *Target
		if !pg {
			t = ge(1500)
		}
		rec.add(sc, fmt.Sprintf("closed loop, %d agents: creates/s", conc), dialect, "/s", t, perSec)
		rec.add(sc, fmt.Sprintf("closed loop, %d agents: create p50", conc), dialect, "ms", nil, r.p(0.5))
		rec.add(sc, fmt.Sprintf("closed loop, %d agents: create p99", conc), dialect, "ms", nil, r.p(0.99))
		rec.add(sc, fmt.Sprintf("closed loop, %d agents: errors + timeouts", conc), dialect, "", nil, float64(r.errors+r.timeouts))
		h.addCPU(rec, sc, fmt.Sprintf("closed loop, %d agents", conc), "create", dialect, cpu0, cpu1, errB, errA, len(r.lat), cpuParties(dialect)...)
		if hasPgbench {
			cpu0, errB := readCPU(in.replicas)
			tps, n, err := h.pgbench(ctx, in.db, conc, sz.ClosedDur)
			if err != nil {
				return err
			}
			cpu1, errA := readCPU(in.replicas)
			h.addCPU(rec, sc, fmt.Sprintf("pgbench, %d clients", conc), "transaction", dialect, cpu0, cpu1, errB, errA, n, "postgres", "pgbench")
			bestPgbench = max(bestPgbench, tps)
			rec.add(sc, fmt.Sprintf("pgbench, %d clients: transactions/s", conc), dialect, "/s", nil, tps)
			rec.add(sc, fmt.Sprintf("Ony ÷ pgbench, %d agents", conc), dialect, "×", ge(0.5), perSec/tps)
		}
	}
	openRate, openTarget := sz.SQLiteOpen, "at 500/s"
	if pg {
		if !hasPgbench {
			return nil
		}
		openRate, openTarget = bestPgbench/2, "at ½ pgbench's best rate"
		if h.quick { // the quick run checks the harness, not the server's limits
			openRate, openTarget = min(openRate, sz.SQLiteOpen), fmt.Sprintf("at min(½ pgbench, %.0f/s) (quick)", sz.SQLiteOpen)
		}
		rec.add(sc, "open loop rate (½ pgbench's best)", dialect, "/s", nil, openRate)
	}
	if h.quick && !pg {
		openTarget = fmt.Sprintf("at %.0f/s (quick)", openRate)
	}
	r := openLoop(ctx, in.agent, openRate, sz.OpenDur, 5*time.Second, false)
	if r.firstErr != nil {
		h.log("open loop %s: %d errors, %d timeouts; first: %v", dialect, r.errors, r.timeouts, r.firstErr)
	}
	rec.add(sc, "open loop "+openTarget+": create p50", dialect, "ms", nil, r.p(0.5))
	rec.add(sc, "open loop "+openTarget+": create p99", dialect, "ms", lt(25), r.p(0.99))
	rec.add(sc, "open loop "+openTarget+": errors + timeouts (5 s)", dialect, "", nil, float64(r.errors+r.timeouts))
	return nil
}

// --- 3: create → first rung ---

func (h *harness) firstRung(ctx context.Context, rec *recorder, sz sizes, dialect string) error {
	sk, err := newSink()
	if err != nil {
		return err
	}
	defer sk.close()
	in, err := h.newInstance(ctx, dialect, 1, sk, 10*time.Minute)
	if err != nil {
		return err
	}
	defer in.close()
	sc := "3. Create → first rung delivered (webhook bridge)"
	r := openLoop(ctx, in.agent, sz.RungRate, sz.RungDur, 5*time.Second, true)
	got := sk.waitStep(ctx, 0, len(r.ids), 30*time.Second)
	var lat []time.Duration
	for id, start := range r.starts {
		if at, ok := got[id]; ok {
			lat = append(lat, at.Sub(start))
		}
	}
	name := fmt.Sprintf("at %.0f creates/s", sz.RungRate)
	rec.add(sc, name+": p50", dialect, "ms", nil, percentile(ms(lat), 0.5))
	rec.add(sc, name+": p99", dialect, "ms", lt(100), percentile(ms(lat), 0.99))
	rec.add(sc, name+": creates failed + rungs missing after 30 s", dialect, "", nil, float64(r.errors+r.timeouts+len(r.starts)-len(lat)))
	return nil
}

// --- 4: rung lateness, and 1,000 at once ---

func (h *harness) lateness(ctx context.Context, rec *recorder, sz sizes, dialect string) error {
	sk, err := newSink()
	if err != nil {
		return err
	}
	defer sk.close()
	in, err := h.newInstance(ctx, dialect, 1, sk, sz.LatenessWait, 10*time.Minute)
	if err != nil {
		return err
	}
	defer in.close()
	sc := "4. Rung lateness"
	r := burst(ctx, in.agent, sz.LatenessN, 32, sz.FillLimit)
	if r.firstErr != nil {
		h.log("lateness %s: %d creates failed; first: %v", dialect, r.errors+r.timeouts, r.firstErr)
	}
	last := time.Time{}
	for _, c := range r.ids {
		last = later(last, c.CreatedAt)
	}
	got := sk.waitStep(ctx, 1, len(r.ids), time.Until(last.Add(sz.LatenessWait+60*time.Second)))
	// A rung not delivered when the observation ends is counted as late by at least that much: its
	// true lateness is larger, so percentiles that reach it are lower bounds.
	ended := time.Now()
	var late []time.Duration
	missing := 0
	for _, c := range r.ids {
		due := c.CreatedAt.Add(sz.LatenessWait)
		if at, ok := got[c.ID]; ok {
			late = append(late, at.Sub(due))
		} else {
			late = append(late, ended.Sub(due))
			missing++
		}
	}
	name := fmt.Sprintf("%s pending, second rung (due %s after create)", groupThousands(strconv.Itoa(sz.LatenessN)), sz.LatenessWait)
	rec.add(sc, name+": handoffs created", dialect, "", nil, float64(len(r.ids)))
	rec.add(sc, name+": creating them took", dialect, "s", nil, r.elapsed.Seconds())
	rec.add(sc, name+": lateness p50", dialect, "ms", nil, percentile(ms(late), 0.5))
	rec.add(sc, name+": lateness p99", dialect, "ms", lt(1000), percentile(ms(late), 0.99))
	rec.add(sc, name+": lateness max", dialect, "ms", nil, percentile(ms(late), 1))
	rec.add(sc, name+": not delivered within 60 s after the last was due (counted above at that point)", dialect, "", nil, float64(missing))
	return nil
}

// atOnce fires AtOnceN creates together at a fresh instance and times the last first rung's arrival.
func (h *harness) atOnce(ctx context.Context, rec *recorder, sz sizes, dialect string) error {
	sk, err := newSink()
	if err != nil {
		return err
	}
	defer sk.close()
	in, err := h.newInstance(ctx, dialect, 1, sk, 10*time.Minute)
	if err != nil {
		return err
	}
	defer in.close()
	sc := "4. Rung lateness"
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := make([]string, 0, sz.AtOnceN)
	failed := 0
	for i := range sz.AtOnceN {
		wg.Go(func() {
			c, err := in.agent.create(ctx, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			ids = append(ids, c.ID)
		})
	}
	wg.Wait()
	created := time.Since(start)
	got := sk.waitStep(ctx, 0, len(ids), 60*time.Second)
	var lastAt time.Time
	missing := 0
	for _, id := range ids {
		at, ok := got[id]
		if !ok {
			missing++
			continue
		}
		lastAt = later(lastAt, at)
	}
	all := math.NaN()
	if missing == 0 && failed == 0 {
		all = lastAt.Sub(start).Seconds()
	}
	name := fmt.Sprintf("%s created at once", groupThousands(strconv.Itoa(sz.AtOnceN)))
	rec.add(sc, name+": all creates answered after", dialect, "s", nil, created.Seconds())
	rec.add(sc, name+": all first rungs delivered after", dialect, "s", lt(2), all)
	rec.add(sc, name+": creates failed + first rungs not delivered within 60 s", dialect, "", nil, float64(failed+missing))
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// --- 5: escalation throughput ---

// throughput creates a batch whose second rungs fall due while the server is stopped, then starts it
// again: every one of them is overdue at once, and the rate at which they arrive is the drain rate.
func (h *harness) throughput(ctx context.Context, rec *recorder, sz sizes, dialect string) error {
	sk, err := newSink()
	if err != nil {
		return err
	}
	defer sk.close()
	wait := sz.BurstWait
	in, err := h.newInstance(ctx, dialect, 1, sk, wait, 10*time.Minute)
	if err != nil {
		return err
	}
	defer in.close()
	sc := "5. Escalation throughput"
	r := burst(ctx, in.agent, sz.BurstN, 32, sz.FillLimit)
	if r.firstErr != nil {
		h.log("throughput %s: %d creates failed; first: %v", dialect, r.errors+r.timeouts, r.firstErr)
	}
	in.stopServers()
	var last time.Time
	for _, c := range r.ids {
		last = later(last, c.CreatedAt)
	}
	before := sk.step(1)
	time.Sleep(time.Until(last.Add(wait + time.Second)))
	s, err := h.serve(ctx, in.vars)
	if err != nil {
		return err
	}
	in.replicas = []*server{s}
	cpu0, errB := readCPU(in.replicas)
	// The drain takes a second or two here; the profile covers it and a little idle time after.
	profiled := h.profileDuring(ctx, s, 3*time.Second, "drain-"+dialect)
	got := sk.waitStep(ctx, 1, len(r.ids), 120*time.Second)
	profiled()
	settle(ctx, in.replicas, 10*time.Second)
	cpu1, errA := readCPU(in.replicas)
	var ats []time.Time
	for id, at := range got {
		if _, old := before[id]; !old && at.After(s.started) {
			ats = append(ats, at)
		}
	}
	slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
	perSec := math.NaN()
	if len(ats) > 1 {
		perSec = rate(len(ats)-1, ats[len(ats)-1].Sub(ats[0]))
	}
	rec.add(sc, "overdue rungs drained after a restart", dialect, "", nil, float64(len(ats)))
	rec.add(sc, "rungs delivered per second (first to last)", dialect, "/s", ge(1000), perSec)
	if len(ats) > 0 {
		rec.add(sc, "restart ready → last rung delivered", dialect, "s", nil, ats[len(ats)-1].Sub(s.ready).Seconds())
	}
	rec.add(sc, "rungs not delivered within 120 s", dialect, "", nil, float64(len(r.ids)-len(before)-len(ats)))
	// The harness's share is the receiver's: it answers every rung's webhook.
	h.addCPU(rec, sc, "the drain", "rung", dialect, cpu0, cpu1, errB, errA, len(ats), cpuParties(dialect)...)
	return nil
}

// --- 6 and 7: decision → waiting agent, then audit verify on the same log ---

// decide fills one organization with pending handoffs, then measures, per run, how long after a
// decide request starts the agent's long-poll on that handoff returns. On PostgreSQL two replicas
// share the database and Redis: the agent waits on A, and the person decides on A, or on B.
func (h *harness) decide(ctx context.Context, rec *recorder, sz sizes, dialect string, wantAudit, wantDecide bool) error {
	n := 1
	if dialect == "postgres" {
		n = 2
	}
	in, err := h.newInstance(ctx, dialect, n, nil)
	if err != nil {
		return err
	}
	defer in.close()
	fill := burst(ctx, in.agent, sz.DecidePending, sz.FillConc, sz.FillLimit)
	if fill.firstErr != nil {
		h.log("fill %s: %d creates failed; first: %v", dialect, fill.errors+fill.timeouts, fill.firstErr)
	}
	h.log("decide %s: %d pending handoffs created in %s (%.0f/s)", dialect, len(fill.ids), fill.elapsed.Round(time.Millisecond), rate(len(fill.ids), fill.elapsed))
	pending := fill.ids
	// A fill this fast leaves every handoff's first rung queued behind it; decisions measured while the
	// queue drains would time the backlog. The queue is roughly first in, first out, so the last
	// handoff's first rung being sent means it has drained.
	if len(pending) > 0 {
		t0 := time.Now()
		if err := in.agent.waitEscalated(ctx, pending[len(pending)-1].ID, sz.FillLimit); err != nil {
			h.log("decide %s: %v; measuring anyway", dialect, err)
		}
		h.log("decide %s: the fill's escalation backlog drained %s after the fill", dialect, time.Since(t0).Round(time.Millisecond))
	}
	sc := "6. Decision → waiting agent"
	fillName := fmt.Sprintf("filling the organization with %s handoffs (%d agents)", groupThousands(strconv.Itoa(sz.DecidePending)), sz.FillConc)
	rec.add(sc, fillName+": handoffs created", dialect, "", nil, float64(len(fill.ids)))
	rec.add(sc, fillName+": creates/s", dialect, "/s", nil, rate(len(fill.ids), fill.elapsed))
	if wantDecide {
		type path struct {
			name    string
			replica int
			target  float64
		}
		paths := []path{{"same replica", 0, 20}}
		if n > 1 {
			paths = append(paths, path{"across replicas (wait on A, decide on B, Redis)", 1, 50})
		}
		for run := range sz.Runs {
			for _, p := range paths {
				person, err := in.person(ctx, p.replica)
				if err != nil {
					return fmt.Errorf("login: %w", err)
				}
				if len(pending) < sz.DecideSamples {
					return errors.New("not enough pending handoffs left")
				}
				batch := pending[:sz.DecideSamples]
				pending = pending[sz.DecideSamples:]
				// The first run's round is profiled on the replica that decides and, across replicas, on
				// the one the agents wait on: a round is a second of waiters settling, then the decisions.
				waits := []func(){}
				if run == 0 {
					d := time.Second + time.Duration(len(batch))*20*time.Millisecond + 500*time.Millisecond
					tag := "same"
					if p.replica != 0 {
						tag = "across"
						waits = append(waits, h.profileDuring(ctx, in.replicas[0], d, "decide-"+dialect+"-"+tag+"-waiter"))
					}
					waits = append(waits, h.profileDuring(ctx, in.replicas[p.replica], d, "decide-"+dialect+"-"+tag+"-decider"))
				}
				lat, decideLat, missed := decideRound(ctx, in.agent, person, batch)
				for _, wait := range waits {
					wait()
				}
				h.log("decide %s %s run %d: %d samples, p50 %.1f ms, p99 %.1f ms", dialect, p.name, run+1, len(lat), percentile(ms(lat), .5), percentile(ms(lat), .99))
				rec.add(sc, p.name+": p50", dialect, "ms", nil, percentile(ms(lat), 0.5))
				rec.add(sc, p.name+": p99", dialect, "ms", lt(p.target), percentile(ms(lat), 0.99))
				rec.add(sc, p.name+": decisions that did not wake the waiter", dialect, "", nil, float64(missed))
				rec.add(sc, p.name+": the decide request's own answer, p99", dialect, "ms", nil, percentile(ms(decideLat), 0.99))
			}
		}
	}
	if !wantAudit {
		return nil
	}
	in.stopServers()
	for range sz.Runs {
		out, d, err := h.runOny(ctx, in.vars, "audit", "verify")
		if err != nil {
			return err
		}
		leaves, verified := verifyOutput(out)
		if leaves == 0 {
			return fmt.Errorf("ony audit verify reported no leaves:\n%s", out)
		}
		sc7 := "7. `ony audit verify`"
		rec.add(sc7, "leaves in the logs", dialect, "", nil, float64(leaves))
		rec.add(sc7, "command wall time", dialect, "s", nil, d.Seconds())
		rec.add(sc7, "leaves/s (whole command)", dialect, "/s", ge(1e6), rate(leaves, d))
		// The command's own timing of each log's verification, without process start, loading the
		// configuration and connecting, which dominate the wall time on a log this small.
		if verified > 0 {
			rec.add(sc7, "verification time (the command's own, summed over the logs)", dialect, "s", nil, verified.Seconds())
			rec.add(sc7, "leaves/s (verification)", dialect, "/s", ge(1e6), rate(leaves, verified))
		}
	}
	return nil
}

var (
	reLeaves   = regexp.MustCompile(`(?m)^ok\s+\S+\s+(\d+) leaves`)
	reVerified = regexp.MustCompile(`(?m)^ok\s+\S+\s+\d+ leaves.*\sverified in (\S+)`)
)

// verifyOutput sums the leaves `ony audit verify` reports and the time it says each log's verification
// took (0 when it does not say: an older ony).
func verifyOutput(out string) (leaves int, verified time.Duration) {
	for _, m := range reLeaves.FindAllStringSubmatch(out, -1) {
		k, _ := strconv.Atoi(m[1])
		leaves += k
	}
	for _, m := range reVerified.FindAllStringSubmatch(out, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			verified += d
		}
	}
	return leaves, verified
}

// decideRound starts a long-poll on every handoff of batch, waits a second so that all of them are
// waiting, then decides one every 20 ms and times each decide request's start to its poll's return.
func decideRound(ctx context.Context, agent, person *api, batch []created) (wake, answer []time.Duration, missed int) {
	type waiter struct {
		back   chan time.Time
		status string
	}
	ws := make([]*waiter, len(batch))
	for i, c := range batch {
		w := &waiter{back: make(chan time.Time, 1)}
		ws[i] = w
		go func() {
			st, err := agent.wait(ctx, c.ID, 30*time.Second)
			if err != nil {
				st = "error"
			}
			w.status = st
			w.back <- time.Now()
		}()
	}
	time.Sleep(time.Second)
	starts := make([]time.Time, len(batch))
	var wg sync.WaitGroup
	var mu sync.Mutex
	tick := time.Now()
	for i, c := range batch {
		time.Sleep(time.Until(tick.Add(time.Duration(i) * 20 * time.Millisecond)))
		starts[i] = time.Now()
		wg.Go(func() {
			if err := person.decide(ctx, c.ID); err == nil {
				mu.Lock()
				answer = append(answer, time.Since(starts[i]))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, w := range ws {
		at := <-w.back
		if w.status == "pending" || w.status == "error" || at.Before(starts[i]) {
			missed++
			continue
		}
		wake = append(wake, at.Sub(starts[i]))
	}
	return wake, answer, missed
}

// --- 8: footprint ---

func (h *harness) footprint(ctx context.Context, rec *recorder, sz sizes, dialect string) error {
	in, err := h.newInstance(ctx, dialect, 1, nil)
	if err != nil {
		return err
	}
	defer in.close()
	sc := "8. Footprint"
	first := in.replicas[0]
	rec.add(sc, "first start to ready (migrations, bootstrap)", dialect, "ms", nil, float64(first.ready.Sub(first.started))/1e6)
	in.stopServers()
	s, err := h.serve(ctx, in.vars)
	if err != nil {
		return err
	}
	in.replicas = []*server{s}
	rec.add(sc, "cold start to ready (existing data)", dialect, "ms", lt(150), float64(s.ready.Sub(s.started))/1e6)
	time.Sleep(sz.IdleSettle)
	rss, err := s.rssMiB()
	if err != nil {
		return err
	}
	rec.add(sc, fmt.Sprintf("idle RSS (%s after ready)", sz.IdleSettle), dialect, "MiB", le(40), rss)
	// RSS goes on growing for minutes after a start: the heap grows to its goal between collections
	// (about one a minute when idle) and periodic work touches more of the program.
	time.Sleep(sz.IdleLong - sz.IdleSettle)
	if rss, err = s.rssMiB(); err != nil {
		return err
	}
	rec.add(sc, fmt.Sprintf("idle RSS (%s after ready)", sz.IdleLong), dialect, "MiB", le(40), rss)
	return nil
}
