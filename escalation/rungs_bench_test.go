package escalation_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// BenchmarkRungs (issue 12) times rungs from create to delivery at a signed webhook bridge on a local
// receiver, on a whole instance with `ony serve`'s job settings (override with BENCH_JOBS_POLL and
// BENCH_JOBS_WORKERS):
//
//	go test ./escalation -run '^$' -bench BenchmarkRungs -benchtime 1x -timeout 20m
//
// Every handoff climbs two rungs to the bridge, the second rungsGap after creation.
//
// burst: rungsBurst handoffs are created at once (rungsCreators goroutines); reported: first rung
// delivered − create returned (burst-p50/p99/max-ms), the time from the first create to the last
// first-rung delivery (burst-all-s), and delivered rungs a second over the burst, first and second
// rungs together (rungs/s).
//
// steady: rungsSteady handoffs at rungsRate a second, each create in its own goroutine; reported:
// first rung delivered − create returned (first-p50/p99-ms) and second rung delivered − its due
// time, created_at + rungsGap (gap-p50/p99-ms).
//
// drain: rungsBurst handoffs are created while the workers are stopped; reported: rungs delivered a
// second from the workers' start until every queued first rung arrived (drain-rungs/s).
func BenchmarkRungs(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			for range b.N {
				rungs(b, dialect)
			}
		})
	}
}

const (
	rungsBurst    = 1000
	rungsCreators = 8
	rungsSteady   = 300
	rungsRate     = 100
	rungsGap      = 3 * time.Second
)

// rungBridge notes when each (handoff, step) escalation arrived; a duplicate is counted, not noted.
type rungBridge struct {
	mu   sync.Mutex
	at   map[string]time.Time
	dups int
}

func (br *rungBridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m webhook.Message
	if err != nil || json.Unmarshal(body, &m) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if m.Type == "handoff.escalated" {
		k := m.Handoff.ID + "/" + strconv.Itoa(m.Step)
		br.mu.Lock()
		if _, seen := br.at[k]; seen {
			br.dups++
		} else {
			br.at[k] = now
		}
		br.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (br *rungBridge) count() int {
	br.mu.Lock()
	defer br.mu.Unlock()
	return len(br.at)
}

func (br *rungBridge) arrival(id string, step int) (time.Time, bool) {
	br.mu.Lock()
	defer br.mu.Unlock()
	t, ok := br.at[id+"/"+strconv.Itoa(step)]
	return t, ok
}

func rungs(b *testing.B, dialect string) {
	b.StopTimer()
	key := make([]byte, 32)
	rand.Read(key)
	br := &rungBridge{at: map[string]time.Time{}}
	srv := httptest.NewServer(br)
	b.Cleanup(srv.Close)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bench.yaml"), []byte(fmt.Sprintf(`name: bench
default: true
steps:
  - channels: [webhook]
    targets: ["webhook:bench"]
    wait: %s
  - channels: [webhook]
    targets: ["webhook:bench"]
    wait: 1h
end: wait
`, rungsGap)), 0o600); err != nil {
		b.Fatal(err)
	}
	// The drain's handoffs have no second rung falling due while it runs: overdue rungs queued behind
	// their own first rung's sends (in order, after a crash too: docs/escalation.md) are another case.
	if err := os.WriteFile(filepath.Join(dir, "drain.yaml"), []byte(`name: drain
match:
  actions: ["drain.*"]
steps:
  - channels: [webhook]
    targets: ["webhook:bench"]
    wait: 1h
end: wait
`), 0o600); err != nil {
		b.Fatal(err)
	}
	jobs := config.Default().Jobs
	if v := os.Getenv("BENCH_JOBS_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		jobs.PollInterval = config.Duration(d)
	}
	if v := os.Getenv("BENCH_JOBS_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		jobs.Workers = n
	}
	in := testserver.Start(b, testserver.Options{Dialect: dialect, Configure: func(c *config.Config) {
		c.Jobs = jobs
		c.Database.MaxOpenConns = max(config.Default().Database.MaxOpenConns, jobs.Workers+rungsCreators+5)
		c.Escalation.LaddersDir = dir
		c.Escalation.Webhooks = []config.Secret{config.Secret("bench=" + srv.URL + "/hook")}
		c.Escalation.WebhookSecret = config.Secret("whsec_" + base64.StdEncoding.EncodeToString(key))
	}}).Seed(b)
	dev := handoff.Actor{OrgID: in.OrgID, Kind: store.ActorDevice, ID: in.DeviceID}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type created struct {
		id        string
		createdAt time.Time // the handoff's own created_at: rung times count from it
		returned  time.Time
	}
	create := func(i int) (created, error) {
		action := "deploy.web"
		if i > rungsBurst+rungsSteady {
			action = "drain.web"
		}
		c, err := in.App.Handoffs.Create(ctx, dev, handoff.CreateRequest{Action: action, Title: fmt.Sprintf("Ship %d", i)}, "")
		return created{id: c.Handoff.ID, createdAt: c.Handoff.CreatedAt, returned: time.Now()}, err
	}
	wait := func(n int, what string) {
		for br.count() < n {
			if ctx.Err() != nil {
				b.Fatalf("%s: the bridge got %d of %d rungs", what, br.count(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pct := func(ds []time.Duration, q float64) time.Duration {
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(float64(len(ds))*q))]
	}

	// Warm-up: connections, caches, the queue; not timed.
	for i := range 5 {
		if _, err := create(-i); err != nil {
			b.Fatal(err)
		}
	}
	wait(10, "warm-up")
	base := br.count()

	b.StartTimer()
	// burst
	var (
		next  atomic.Int64
		mu    sync.Mutex
		burst []created
		wg    sync.WaitGroup
		fail  atomic.Pointer[error]
	)
	began := time.Now()
	for range rungsCreators {
		wg.Go(func() {
			for i := next.Add(1); i <= rungsBurst; i = next.Add(1) {
				c, err := create(int(i))
				if err != nil {
					fail.Store(&err)
					return
				}
				mu.Lock()
				burst = append(burst, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		b.Fatalf("create: %v", *err)
	}
	createdIn := time.Since(began)
	wait(base+2*rungsBurst, "burst")
	var first []time.Duration
	var lastFirst, firstAny, lastAny time.Time
	for _, c := range burst {
		t1, _ := br.arrival(c.id, 0)
		t2, _ := br.arrival(c.id, 1)
		first = append(first, t1.Sub(c.returned))
		if t1.After(lastFirst) {
			lastFirst = t1
		}
		for _, t := range []time.Time{t1, t2} {
			if firstAny.IsZero() || t.Before(firstAny) {
				firstAny = t
			}
			if t.After(lastAny) {
				lastAny = t
			}
		}
	}
	rate := float64(2*rungsBurst) / lastAny.Sub(firstAny).Seconds()
	b.ReportMetric(ms(pct(first, .5)), "burst-p50-ms")
	b.ReportMetric(ms(pct(first, .99)), "burst-p99-ms")
	b.ReportMetric(ms(pct(first, 1)), "burst-max-ms")
	b.ReportMetric(lastFirst.Sub(began).Seconds(), "burst-all-s")
	b.ReportMetric(rate, "rungs/s")
	b.Logf("%s burst: %d created in %s; first rung p50 %.0fms p99 %.0fms max %.0fms after its create; all first rungs %.2fs after the first create; %.0f rungs/s",
		dialect, rungsBurst, createdIn.Round(time.Millisecond), ms(pct(first, .5)), ms(pct(first, .99)), ms(pct(first, 1)),
		lastFirst.Sub(began).Seconds(), rate)

	// steady
	base = br.count()
	var steady []created
	tick := time.NewTicker(time.Second / rungsRate)
	for i := range rungsSteady {
		<-tick.C
		wg.Go(func() {
			c, err := create(rungsBurst + 1 + i)
			if err != nil {
				fail.Store(&err)
				return
			}
			mu.Lock()
			steady = append(steady, c)
			mu.Unlock()
		})
	}
	tick.Stop()
	wg.Wait()
	if err := fail.Load(); err != nil {
		b.Fatalf("create: %v", *err)
	}
	wait(base+2*rungsSteady, "steady")
	b.StopTimer()
	var sFirst, sGap []time.Duration
	for _, c := range steady {
		t1, _ := br.arrival(c.id, 0)
		t2, _ := br.arrival(c.id, 1)
		sFirst = append(sFirst, t1.Sub(c.returned))
		sGap = append(sGap, t2.Sub(c.createdAt.Add(rungsGap)))
	}
	b.ReportMetric(ms(pct(sFirst, .5)), "first-p50-ms")
	b.ReportMetric(ms(pct(sFirst, .99)), "first-p99-ms")
	b.ReportMetric(ms(pct(sGap, .5)), "gap-p50-ms")
	b.ReportMetric(ms(pct(sGap, .99)), "gap-p99-ms")
	b.Logf("%s steady %d/s: first rung p50 %.0fms p99 %.0fms after its create; +%s rung p50 %.0fms p99 %.0fms late",
		dialect, rungsRate, ms(pct(sFirst, .5)), ms(pct(sFirst, .99)), rungsGap, ms(pct(sGap, .5)), ms(pct(sGap, .99)))
	// drain: rungsBurst handoffs are created with the workers stopped, then the workers start; the
	// engine's own rate, without creates competing.
	base = br.count()
	if err := in.App.Store.StopJobs(ctx); err != nil {
		b.Fatal(err)
	}
	var queued []created
	for i := range rungsBurst {
		c, err := create(rungsBurst + rungsSteady + 1 + i)
		if err != nil {
			b.Fatal(err)
		}
		queued = append(queued, c)
	}
	b.StartTimer()
	started := time.Now()
	if err := in.App.StartJobs(ctx); err != nil {
		b.Fatal(err)
	}
	for {
		done := 0
		for _, c := range queued {
			if _, ok := br.arrival(c.id, 0); ok {
				done++
			}
		}
		if done == len(queued) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("drain: %d of %d first rungs arrived", done, len(queued))
		}
		time.Sleep(5 * time.Millisecond)
	}
	drained := time.Since(started)
	b.StopTimer()
	drainRate := float64(br.count()-base) / drained.Seconds()
	b.ReportMetric(drainRate, "drain-rungs/s")
	b.Logf("%s drain: %d queued rungs delivered in %s: %.0f rungs/s", dialect, br.count()-base, drained.Round(time.Millisecond), drainRate)

	br.mu.Lock()
	dups := br.dups
	br.mu.Unlock()
	if dups > 0 {
		b.Fatalf("%d rungs arrived twice", dups)
	}
	in.Stop(b)
}
