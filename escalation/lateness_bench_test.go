package escalation_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// BenchmarkStepLateness measures how late rungs start against their schedule while 10,000 handoffs
// are pending, on a whole instance (River workers polling every 50 ms, 20 of them):
//
//	go test ./escalation -run XXX -bench StepLateness -benchtime 1x -timeout 20m
//
// Every handoff climbs a two-step ladder (console to the admin, 10 minutes apart). A clock seam sets
// each handoff's created_at, and so when its second rung is due. First latenessHandoffs −
// latenessMeasured handoffs are created whose second rungs are hours away: they only add to the
// pending load (and time how fast setup goes). Then latenessMeasured handoffs are created whose
// second rungs are spread evenly over latenessWindow, which opens once every handoff exists and every
// first rung has run. Reported: p50/p99/max of started − scheduled for those second rungs' step jobs
// (and, as send-*, for the send jobs they fan out, which are due at once), and the setup time.
func BenchmarkStepLateness(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			for range b.N {
				stepLateness(b, dialect)
			}
		})
	}
}

const (
	latenessHandoffs = 10_000
	latenessMeasured = 2_000
	latenessWindow   = time.Minute
	latenessRungWait = 10 * time.Minute
)

const latenessLadder = `name: default
default: true
steps:
  - name: first
    channels: [console]
    targets: [role:admin]
    wait: 10m
  - name: second
    channels: [console]
    targets: [role:admin]
    wait: 10m
end: wait
`

// benchClock is real time, except while handoffs are created: then it hands out the created_at that
// puts the next handoff's second rung where the benchmark wants it.
type benchClock struct {
	fake  atomic.Bool
	base  atomic.Int64 // unix ns of the second rung of handoff 0 of the current batch
	step  atomic.Int64 // ns between consecutive handoffs' second rungs
	count atomic.Int64 // handoffs of the batch started so far
}

func (c *benchClock) now() time.Time {
	if !c.fake.Load() {
		return time.Now()
	}
	at := c.base.Load() + (c.count.Load()-1)*c.step.Load()
	return time.Unix(0, at).Add(-latenessRungWait)
}

// recorder collects the engine's lateness observations once recording is on; before, it only counts.
type latenessRecorder struct {
	mu         sync.Mutex
	recording  bool
	early      map[string]int
	step, send []time.Duration
}

func (r *latenessRecorder) observe(kind string, late time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.recording {
		r.early[kind]++
		return
	}
	switch kind {
	case escalation.StepArgs{}.Kind():
		r.step = append(r.step, late)
	case escalation.SendArgs{}.Kind():
		r.send = append(r.send, late)
	}
}

func (r *latenessRecorder) counts() (earlySteps, earlySends, steps, sends int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.early[escalation.StepArgs{}.Kind()], r.early[escalation.SendArgs{}.Kind()], len(r.step), len(r.send)
}

func stepLateness(b *testing.B, dialect string) {
	b.StopTimer()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte(latenessLadder), 0o600); err != nil {
		b.Fatal(err)
	}
	clk := &benchClock{}
	rec := &latenessRecorder{early: map[string]int{}}
	in := testserver.Start(b, testserver.Options{
		Dialect: dialect,
		Clock:   clk.now,
		Configure: func(c *config.Config) {
			c.Escalation.LaddersDir = dir
			c.Jobs.Workers = 20
			c.Jobs.PollInterval = config.Duration(50 * time.Millisecond)
			if dialect == "postgres" {
				c.Database.MaxOpenConns = 30
			}
		},
		ObserveLateness: rec.observe,
	}).Seed(b)
	dev := handoff.Actor{OrgID: in.OrgID, Kind: store.ActorDevice, ID: in.DeviceID}
	svc := in.App.Handoffs
	ctx := context.Background()
	creators := 4
	if dialect == "postgres" {
		creators = 16
	}
	create := func(n int, base time.Time, step time.Duration) {
		clk.base.Store(base.UnixNano())
		clk.step.Store(int64(step))
		clk.count.Store(0)
		clk.fake.Store(true)
		defer clk.fake.Store(false)
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, creators)
		for range creators {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					clk.count.Add(1)
					if _, err := svc.Create(ctx, dev, handoff.CreateRequest{Action: "deploy.web", Title: "Ship it"}, ""); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatalf("create: %v", err)
		}
	}

	// The pending-only handoffs first; the time they take, first rungs included, places the window.
	setupStart := time.Now()
	background := latenessHandoffs - latenessMeasured
	create(background, time.Now().Add(3*time.Hour), 0)
	for {
		st, se, _, _ := rec.counts()
		if st >= background && se >= background {
			break
		}
		if time.Since(setupStart) > 10*time.Minute {
			b.Fatalf("the first rungs of %d handoffs did not run within 10m: %d steps, %d sends", background, st, se)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rate := float64(background) / time.Since(setupStart).Seconds()
	estimate := time.Duration(float64(latenessMeasured)/rate*float64(time.Second)) * 2
	opens := time.Now().Add(estimate + 5*time.Second)
	create(latenessMeasured, opens, latenessWindow/time.Duration(latenessMeasured))
	created := time.Since(setupStart)
	measured := latenessMeasured

	// Every first rung must have run (and fanned out) before recording starts, so that what is
	// recorded is second rungs only.
	for {
		st, se, _, _ := rec.counts()
		if st >= latenessHandoffs && se >= latenessHandoffs {
			break
		}
		if time.Now().After(opens.Add(-time.Second)) {
			b.Fatalf("the first rungs were not done before the window opened: %d steps and %d sends of %d ran (creation took %s; raise the estimate)",
				st, se, latenessHandoffs, created.Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec.mu.Lock()
	rec.recording = true
	rec.mu.Unlock()
	setup := time.Since(setupStart)
	b.Logf("%s: created %d handoffs in %s (%.0f/s with their first rungs), all first rungs done after %s; window opens %s later",
		dialect, latenessHandoffs, created.Round(time.Millisecond), rate, setup.Round(time.Millisecond), time.Until(opens).Round(time.Millisecond))

	b.StartTimer()
	deadline := opens.Add(latenessWindow + 2*time.Minute)
	for {
		_, _, st, se := rec.counts()
		if st >= measured && se >= measured {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d second rungs (%d sends) ran by 2m after the window closed", st, measured, se)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.StopTimer()

	rec.mu.Lock()
	steps, sends := slices.Clone(rec.step), slices.Clone(rec.send)
	rec.mu.Unlock()
	p := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(float64(len(ds))*q))]) / float64(time.Millisecond)
	}
	b.ReportMetric(p(steps, 0.50), "p50-ms")
	b.ReportMetric(p(steps, 0.99), "p99-ms")
	b.ReportMetric(p(steps, 1), "max-ms")
	b.ReportMetric(p(sends, 0.50), "send-p50-ms")
	b.ReportMetric(p(sends, 0.99), "send-p99-ms")
	b.ReportMetric(p(sends, 1), "send-max-ms")
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.Logf("%s: %d second rungs over %s with %d handoffs pending: step lateness p50 %.0fms p99 %.0fms max %.0fms; send p50 %.0fms p99 %.0fms max %.0fms",
		dialect, len(steps), latenessWindow, latenessHandoffs, p(steps, .5), p(steps, .99), p(steps, 1), p(sends, .5), p(sends, .99), p(sends, 1))
	in.Stop(b)
}
