package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// Canaries: what a person, an agent or a secret would leave behind if anything personal reached a
// label. None may appear in a scrape.
const (
	canaryEmail    = "canary-mail-7f3a@example.test"
	canaryPhone    = "+15557654321"
	canaryName     = "CANARY-NAME-5c1d"
	canaryTitle    = "CANARY-TITLE-91b"
	canaryStripe   = "sk_live_CANARY4eC39HqLyjWDarjtT1zdp7dc"
	canaryAWS      = "AKIAZ7QK3M9XPL2WRT4B"
	canaryAWSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY1"
	canaryCallback = "/cb/CANARY-CALLBACK-7e2"
	canaryLabel    = "CANARY-LABEL-44d"
	canaryComment  = "CANARY-COMMENT-0a9"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestMetricsScrapeCarriesNoPersonalData (issue 17) on both dialects: traffic full of canaries —
// a person with a canary email and phone number, handoffs with canary titles, labels, callback paths
// and secrets redaction catches — decided, denied and cancelled; then the operator's /metrics shows
// every family with counts where the traffic happened, and not one canary, id or token.
func TestMetricsScrapeCarriesNoPersonalData(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ops := freeAddr(t)
			var delivered atomic.Int64
			rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				delivered.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer rcv.Close()
			in := testserver.Start(t, testserver.Options{Dialect: d, Configure: func(c *config.Config) {
				c.Metrics.Listen = ops
				c.Callbacks.AllowPrivate = true // the receiver runs on 127.0.0.1
			}}).Seed(t)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			// A person whose contact details are canaries decides.
			personID := uuid.NewString()
			err := in.App.Store.InOrg(ctx, in.OrgID, func(tx store.OrgTx) error {
				now := time.Now().UTC()
				if err := tx.CreateUser(ctx, store.User{ID: personID, Email: canaryEmail, Name: canaryName, PasswordHash: "x",
					Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: now}); err != nil {
					return err
				}
				return tx.SetContact(ctx, store.Contact{OrgID: in.OrgID, UserID: personID, Kind: "phone", Address: canaryPhone,
					VerifiedAt: &now, CreatedAt: now})
			})
			if err != nil {
				t.Fatal(err)
			}
			sess := in.Session(t, in.OrgID, personID)
			person := testserver.PersonAt(t, in.URL, sess)
			agent := in.Agent(t)

			var ids []string
			for i, title := range []string{canaryTitle + " deploy billing", canaryTitle + " rotate keys", canaryTitle + " drop table"} {
				h, _, err := agent.Create(ctx, client.CreateRequest{
					Action:      "shell.exec",
					Title:       title,
					Summary:     "uses " + canaryStripe + " and AWS_ACCESS_KEY_ID=" + canaryAWS + " aws_secret_access_key=" + canaryAWSecret,
					Labels:      map[string]string{"team": canaryLabel},
					Payload:     &client.Payload{Kind: "command", Content: "STRIPE_KEY=" + canaryStripe + " ./deploy.sh --to " + canaryEmail},
					CallbackURL: rcv.URL + canaryCallback + "/" + strconv.Itoa(i),
				}, "")
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(h.Gist, canaryStripe) {
					t.Fatalf("the gist carries the secret: %q", h.Gist)
				}
				ids = append(ids, h.ID)
			}
			// The first rungs' sends are jobs too, and a decision or a cancel that commits before a
			// handoff's rung runs leaves nothing to send: wait for one before ending them.
			for deadline := time.Now().Add(60 * time.Second); sample(scrapeOps(t, "http://"+ops+"/metrics"),
				"ony_escalation_sends_total", `channel="console"`, `provider="builtin"`, `result="sent"`) == 0; {
				if time.Now().After(deadline) {
					t.Fatal("no rung was sent within 60s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			if _, err := person.Get(ctx, ids[0]); err != nil {
				t.Fatal(err)
			}
			if _, err := person.Decide(ctx, ids[0], "approve", canaryComment); err != nil {
				t.Fatal(err)
			}
			if _, err := person.Decide(ctx, ids[1], "deny", canaryComment); err != nil {
				t.Fatal(err)
			}
			if _, err := agent.Cancel(ctx, ids[2], canaryComment); err != nil {
				t.Fatal(err)
			}
			if _, err := agent.WaitOnce(ctx, ids[0], time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := agent.Get(ctx, uuid.NewString()); err == nil {
				t.Fatal("an unknown handoff was found")
			}

			// The rungs, the callbacks and the sequencer run in jobs: scrape until they have.
			var body string
			deadline := time.Now().Add(60 * time.Second)
			for {
				body = scrapeOps(t, "http://"+ops+"/metrics")
				if delivered.Load() >= 3 &&
					sample(body, "ony_escalation_sends_total", `channel="console"`, `provider="builtin"`, `result="sent"`) > 0 &&
					sample(body, "ony_callback_deliveries_total", `result="delivered"`) >= 3 &&
					sample(body, "ony_audit_records_sequenced_total") > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the jobs' metrics did not show within 60s (callbacks received %d):\n%s", delivered.Load(), body)
				}
				time.Sleep(200 * time.Millisecond)
			}

			for _, c := range []struct {
				name   string
				labels []string
				min    float64
			}{
				{"ony_handoffs_created_total", nil, 3},
				{"ony_handoffs_finished_total", []string{`outcome="approved"`}, 1},
				{"ony_handoffs_finished_total", []string{`outcome="denied"`}, 1},
				{"ony_handoffs_finished_total", []string{`outcome="cancelled"`}, 1},
				{"ony_handoff_decision_seconds_count", nil, 3},
				{"ony_escalation_sends_total", []string{`channel="console"`, `provider="builtin"`, `result="sent"`}, 1},
				{"ony_escalation_rung_lateness_seconds_count", nil, 1},
				{"ony_callback_deliveries_total", []string{`result="delivered"`}, 3},
				{"ony_audit_records_appended_total", nil, 6},
				{"ony_audit_records_sequenced_total", nil, 1},
				{"ony_redactions_total", nil, 3},
				{"ony_http_requests_total", []string{`route="POST /v1/handoffs"`, `status="2xx"`}, 3},
				{"ony_http_requests_total", []string{`route="POST /v1/handoffs/{id}/decide"`, `status="2xx"`}, 2},
				{"ony_http_requests_total", []string{`route="GET /v1/handoffs/{id}"`, `status="4xx"`}, 1},
				{"ony_http_request_duration_seconds_count", []string{`route="GET /v1/handoffs/{id}/wait"`}, 1},
				{"go_goroutines", nil, 1},
			} {
				if got := sample(body, c.name, c.labels...); got < c.min {
					t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
				}
			}
			if !strings.Contains(body, `ony_job_queue_depth{state="scheduled"} `) || !strings.Contains(body, "process_start_time_seconds ") {
				t.Errorf("the scrape lacks the job queue depth or the process collector")
			}

			canaries := []string{canaryEmail, canaryPhone, strings.TrimPrefix(canaryPhone, "+1"), canaryName, canaryTitle, canaryStripe,
				canaryAWS, canaryAWSecret, canaryCallback, canaryLabel, canaryComment, "CANARY", "canary", "sk_live",
				in.OrgID, in.DeviceID, in.DeviceToken, sess, personID, in.Admin.ID, in.Member.ID, in.Viewer.ID,
				in.Admin.Email, in.Member.Email, in.Viewer.Email, "acme", "Acme"}
			canaries = append(canaries, ids...)
			for _, c := range canaries {
				if c != "" && strings.Contains(body, c) {
					t.Errorf("the scrape carries %q", c)
				}
			}
			// Only closed-set values and route patterns: no uuid anywhere.
			for _, line := range strings.Split(body, "\n") {
				if strings.HasPrefix(line, "ony_") && uuidish(line) {
					t.Errorf("an id-like value in %q", line)
				}
			}

			// The public listener serves neither metrics nor profiles.
			for _, p := range []string{"/metrics", "/debug/pprof/"} {
				resp, err := testhttp.Client.Get(in.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("public listener %s: %d, want 404", p, resp.StatusCode)
				}
			}
		})
	}
}

// TestMetricsOffByDefault: without metrics.listen nothing is recorded and the public listener has no
// /metrics.
func TestMetricsOffByDefault(t *testing.T) {
	t.Parallel()
	if l := config.Default().Metrics.Listen; l != "" {
		t.Fatalf("metrics.listen defaults to %q, want off", l)
	}
	in := testserver.Start(t, testserver.Options{}).Seed(t)
	if in.App.Metrics != nil {
		t.Error("a recorder was built with metrics.listen off")
	}
	resp, err := testhttp.Client.Get(in.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("public listener /metrics: %d, want 404", resp.StatusCode)
	}
}

func scrapeOps(t *testing.T, url string) string {
	t.Helper()
	hc := &http.Client{Transport: testhttp.Client.Transport, Timeout: 10 * time.Second}
	var lastErr error
	for range 50 { // the listener starts with Serve, beside the test
		resp, err := hc.Get(url)
		if err != nil {
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		return string(b)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// sample sums the samples of the metric name whose labels include every one of labels (k="v").
func sample(body, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbls string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndex(rest, "}") // route patterns hold braces too
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // a longer name
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(","+lbls+",", ","+l+",")
		}
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			sum += v
		}
	}
	return sum
}

// uuidish reports a run of 8 hex digits, a dash and 4 more: the start of a uuid.
func uuidish(s string) bool {
	hex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
	for i := 0; i+13 <= len(s); i++ {
		ok := s[i+8] == '-'
		for j := 0; ok && j < 13; j++ {
			if j != 8 {
				ok = hex(s[i+j])
			}
		}
		if ok {
			return true
		}
	}
	return false
}
