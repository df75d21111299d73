package app_test

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
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
)

// BenchmarkChat (issue 14) times the two chat paths people feel, on a whole instance with `ony serve`'s
// job defaults (config.Default; PostgreSQL gets at least workers + 5 connections), Slack pointed at
// the strict fake and a signed Standard Webhooks bridge as the baseline in the same run:
//
//	go test ./internal/app -run '^$' -bench BenchmarkChat -benchtime 1x -timeout 20m
//
// create→post: chatCreates handoffs are created through the API in an open loop at chatRate a second
// (each in its own goroutine, so a slow create does not delay the next); every one climbs a rung
// posting to the admin on Slack and to the bridge. Reported: p50/p99 of arrival at the fake Slack
// (chat.postMessage) and at the bridge, each minus the moment the create request was sent.
//
// tap→wait: for chatTaps of those handoffs the agent's long-poll is started, and once every poll is
// waiting a signed Approve tap is sent to /hooks/slack/interactions; for as many others the admin
// decides through POST /v1/handoffs/{id}/decide (the baseline). Taps and API decisions alternate,
// one every chatTapEvery. Reported: p50/p99 of the long-poll's return minus the moment the tap or
// decide request was sent. Slack's route answers 200 before it decides, so the tap's own answer is
// not what is timed.
func BenchmarkChat(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			for range b.N {
				chatBench(b, dialect)
			}
		})
	}
}

const (
	chatCreates  = 500
	chatRate     = 100 // creates a second
	chatTaps     = 200 // per path: Slack taps, and as many API decisions
	chatTapEvery = 20 * time.Millisecond
	chatSlackID  = "UADMIN01"
)

var consoleHandoff = regexp.MustCompile(`/console/handoffs/([0-9a-f-]{36})`)

// bridge is a webhook receiver that verifies each post and notes when each handoff's escalation came.
type bridge struct {
	key []byte
	mu  sync.Mutex
	at  map[string]time.Time
	bad int
}

func (br *bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	now := time.Now()
	if err != nil || auth.VerifyWebhook(br.key, r.Header, body, now, auth.DefaultWebhookTolerance) != nil {
		br.mu.Lock()
		br.bad++
		br.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var m webhook.Message
	if err := json.Unmarshal(body, &m); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if m.Type == "handoff.escalated" {
		br.mu.Lock()
		if _, seen := br.at[m.Handoff.ID]; !seen {
			br.at[m.Handoff.ID] = now
		}
		br.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (br *bridge) count() int {
	br.mu.Lock()
	defer br.mu.Unlock()
	return len(br.at)
}

// jobLateness collects how late escalation jobs started against their schedule (started − due), by
// kind: where create→post time goes when it is not the channel's.
type jobLateness struct {
	mu sync.Mutex
	by map[string][]time.Duration
}

func (l *jobLateness) observe(kind string, late time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[kind] = append(l.by[kind], late)
}

func (l *jobLateness) take() map[string][]time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	by := l.by
	l.by = map[string][]time.Duration{}
	return by
}

// benchJobs is `ony serve`'s job configuration, unless BENCH_CHAT_POLL (a duration) or
// BENCH_CHAT_WORKERS override it to see how the numbers follow the queue.
func benchJobs(b *testing.B) config.Jobs {
	j := config.Default().Jobs
	if v := os.Getenv("BENCH_CHAT_POLL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("BENCH_CHAT_POLL: %v", err)
		}
		j.PollInterval = config.Duration(d)
	}
	if v := os.Getenv("BENCH_CHAT_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("BENCH_CHAT_WORKERS: %v", err)
		}
		j.Workers = n
	}
	return j
}

// pct is the q-quantile of ds in milliseconds; it sorts ds.
func pct(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return float64(ds[min(len(ds)-1, int(float64(len(ds))*q))]) / float64(time.Millisecond)
}

func chatBench(b *testing.B, dialect string) {
	b.StopTimer()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		b.Fatal(err)
	}
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	key, err := config.WebhookSecretBytes(whsec)
	if err != nil {
		b.Fatal(err)
	}
	br := &bridge{key: key, at: map[string]time.Time{}}
	brSrv := httptest.NewServer(br)
	b.Cleanup(brSrv.Close)
	sl := slacktest.New(b, e2eSlackToken)

	ladders := b.TempDir()
	if err := os.WriteFile(filepath.Join(ladders, "bench.yaml"), []byte(`
name: bench
default: true
steps:
  - channels: [slack, webhook]
    targets: [role:admin, "webhook:bench"]
    wait: 1h
end: wait
`), 0o600); err != nil {
		b.Fatal(err)
	}
	jobs := benchJobs(b)
	late := &jobLateness{by: map[string][]time.Duration{}}
	in := testserver.Start(b, testserver.Options{Dialect: dialect, ObserveLateness: late.observe, Configure: func(c *config.Config) {
		c.Jobs = jobs // testserver polls every 50 ms; time what `ony serve` does
		c.Database.MaxOpenConns = max(config.Default().Database.MaxOpenConns, jobs.Workers+5)
		c.Escalation.LaddersDir = ladders
		c.Escalation.Webhooks = []config.Secret{config.Secret("bench=" + brSrv.URL + "/hook")}
		c.Escalation.WebhookSecret = config.Secret(whsec)
		c.Slack = config.Slack{BotToken: e2eSlackToken, SigningSecret: e2eSlackSecret, APIURL: sl.URL()}
	}}).Seed(b)
	addr := chatSlackID
	people := org.Service{Store: in.App.Store, Audit: in.App.Audit, Kinds: in.App.Escalation.Kinds()}
	if _, err := people.UpdateContact(context.Background(), audit.Actor{Kind: "system", ID: "bench"}, in.OrgID, in.Admin.Email,
		org.Contact{Addresses: map[string]*string{"slack": &addr}}); err != nil {
		b.Fatal(err)
	}
	agent := in.Agent(b)
	admin := in.Person(b, in.Admin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A few handoffs first so that connections, caches and the job queue are warm; not timed.
	for i := range 5 {
		if _, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy.web", Title: fmt.Sprintf("warm-up %d", i)}, ""); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := sl.WaitPosted(ctx, 5); err != nil {
		b.Fatal(err)
	}
	warm := 5
	late.take()

	// create→post, open loop.
	b.StartTimer()
	var (
		mu       sync.Mutex
		sentAt   = map[string]time.Time{}
		creates  []time.Duration
		failures []error
		wg       sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / chatRate)
	began := time.Now()
	for i := range chatCreates {
		<-tick.C
		wg.Go(func() {
			t0 := time.Now()
			h, _, err := agent.Create(ctx, client.CreateRequest{Action: "deploy.web", Title: fmt.Sprintf("Ship build %d", i)}, "")
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
				return
			}
			sentAt[h.ID] = t0
			creates = append(creates, d)
		})
	}
	tick.Stop()
	wg.Wait()
	offered := time.Since(began)
	if len(failures) > 0 {
		b.Fatalf("%d creates failed, the first: %v", len(failures), failures[0])
	}
	posted, err := sl.WaitPosted(ctx, warm+chatCreates)
	if err != nil {
		b.Fatal(err)
	}
	for br.count() < warm+chatCreates {
		if ctx.Err() != nil {
			b.Fatalf("the bridge got %d of %d escalations", br.count(), warm+chatCreates)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	jobLate := late.take()

	var slackLat, hookLat []time.Duration
	approve := map[string]string{} // handoff id → the Approve button's value
	for _, m := range posted {
		match := consoleHandoff.FindStringSubmatch(m.Text + m.Blocks)
		if match == nil {
			b.Fatalf("a Slack post names no handoff: %q", m.Text)
		}
		id := match[1]
		for _, btn := range m.Buttons() {
			if btn.Text == "Approve" {
				approve[id] = btn.Value
			}
		}
		if approve[id] == "" {
			b.Fatalf("the Slack post of %s has no Approve button", id)
		}
		if t0, ok := sentAt[id]; ok {
			slackLat = append(slackLat, m.At.Sub(t0))
		}
	}
	br.mu.Lock()
	for id, at := range br.at {
		if t0, ok := sentAt[id]; ok {
			hookLat = append(hookLat, at.Sub(t0))
		}
	}
	bad := br.bad
	br.mu.Unlock()
	if len(slackLat) != chatCreates || len(hookLat) != chatCreates || bad > 0 {
		b.Fatalf("matched %d Slack posts and %d bridge posts of %d creates; %d bridge posts did not verify",
			len(slackLat), len(hookLat), chatCreates, bad)
	}

	// tap→wait: long-polls on 2×chatTaps handoffs, then taps and API decisions alternating.
	ids := make([]string, 0, len(sentAt))
	for id := range sentAt {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) < 2*chatTaps {
		b.Fatalf("%d handoffs for %d decisions", len(ids), 2*chatTaps)
	}
	type result struct {
		returned time.Time
		h        *client.Handoff
		err      error
	}
	results := make([]chan result, 2*chatTaps)
	for i := range results {
		results[i] = make(chan result, 1)
		go func() {
			h, err := agent.WaitOnce(ctx, ids[i], 60*time.Second)
			results[i] <- result{time.Now(), h, err}
		}()
	}
	time.Sleep(2 * time.Second) // every poll is in and waiting
	for i := range results {
		select {
		case r := <-results[i]:
			b.Fatalf("a long-poll returned before its decision: %+v %v", r.h, r.err)
		default:
		}
	}
	hc := &http.Client{Transport: testhttp.Client.Transport, Timeout: 10 * time.Second}
	tap := func(id string) error {
		req := slacktest.NewRequest(in.URL+"/hooks/slack/interactions", e2eSlackSecret,
			slacktest.BlockActions(chatSlackID, "ony_decide_1", approve[id], sl.ResponseURL()))
		req.RequestURI = ""
		resp, err := hc.Do(req.WithContext(ctx))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("tap: %d", resp.StatusCode)
		}
		return nil
	}
	sent := make([]time.Time, 2*chatTaps)
	errs := make(chan error, 2*chatTaps)
	b.StartTimer()
	tick = time.NewTicker(chatTapEvery)
	for i := range 2 * chatTaps {
		<-tick.C
		wg.Go(func() {
			sent[i] = time.Now()
			var err error
			if i%2 == 0 {
				err = tap(ids[i])
			} else {
				_, err = admin.Decide(ctx, ids[i], "approve", "")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	tick.Stop()
	wg.Wait()
	var tapLat, apiLat []time.Duration
	for i := range results {
		r := <-results[i]
		if r.err != nil || r.h.Status != client.StatusApproved {
			b.Fatalf("long-poll %d: %+v %v", i, r.h, r.err)
		}
		want := "slack"
		if i%2 == 1 {
			want = "console"
		}
		if r.h.Decision == nil || (want == "slack") != (r.h.Decision.Channel == "slack") {
			b.Fatalf("long-poll %d: decided %+v, want via %s", i, r.h.Decision, want)
		}
		if i%2 == 0 {
			tapLat = append(tapLat, r.returned.Sub(sent[i]))
		} else {
			apiLat = append(apiLat, r.returned.Sub(sent[i]))
		}
	}
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatalf("decide: %v", err)
	}

	cp50, cp99 := pct(creates, .5), pct(creates, .99)
	sp50, sp99, smax := pct(slackLat, .5), pct(slackLat, .99), pct(slackLat, 1)
	hp50, hp99, hmax := pct(hookLat, .5), pct(hookLat, .99), pct(hookLat, 1)
	tp50, tp99, tmax := pct(tapLat, .5), pct(tapLat, .99), pct(tapLat, 1)
	ap50, ap99, amax := pct(apiLat, .5), pct(apiLat, .99), pct(apiLat, 1)
	b.ReportMetric(sp50, "post-slack-p50-ms")
	b.ReportMetric(sp99, "post-slack-p99-ms")
	b.ReportMetric(hp50, "post-webhook-p50-ms")
	b.ReportMetric(hp99, "post-webhook-p99-ms")
	b.ReportMetric(sp99/hp99, "post-p99-slack/webhook")
	b.ReportMetric(tp50, "tap-slack-p50-ms")
	b.ReportMetric(tp99, "tap-slack-p99-ms")
	b.ReportMetric(ap50, "decide-api-p50-ms")
	b.ReportMetric(ap99, "decide-api-p99-ms")
	b.ReportMetric(tp99/ap99, "wait-p99-slack/api")
	verdict := func(p99, target float64) string {
		if p99 < target {
			return "met"
		}
		return fmt.Sprintf("MISSED by %.0f ms", p99-target)
	}
	b.Logf("%s: %d creates offered over %s (%.0f/s); create answered p50 %.0fms p99 %.0fms",
		dialect, chatCreates, offered.Round(time.Millisecond), float64(chatCreates)/offered.Seconds(), cp50, cp99)
	b.Logf("%s: jobs polled every %s by %d workers; while creating, escalation jobs started late by (started − due): %s",
		dialect, time.Duration(jobs.PollInterval), jobs.Workers, describeLateness(jobLate))
	b.Logf("%s: create→Slack post p50 %.0fms p99 %.0fms max %.0fms (target p99 < 100 ms: %s); create→bridge post p50 %.0fms p99 %.0fms max %.0fms; p99 ratio %.2f",
		dialect, sp50, sp99, smax, verdict(sp99, 100), hp50, hp99, hmax, sp99/hp99)
	b.Logf("%s: signed tap→long-poll p50 %.1fms p99 %.1fms max %.1fms (target p99 < 20 ms: %s); API decide→long-poll p50 %.1fms p99 %.1fms max %.1fms; p99 ratio %.2f",
		dialect, tp50, tp99, tmax, verdict(tp99, 20), ap50, ap99, amax, tp99/ap99)
	in.Stop(b)
}

func describeLateness(by map[string][]time.Duration) string {
	kinds := make([]string, 0, len(by))
	for k := range by {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		ds := by[k]
		parts = append(parts, fmt.Sprintf("%s ×%d p50 %.0fms p99 %.0fms", k, len(ds), pct(ds, .5), pct(ds, .99)))
	}
	return strings.Join(parts, "; ")
}
