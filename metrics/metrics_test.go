package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/metrics"
	"github.com/ony-ai/ony/redact"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/telnyx"
)

// allowed is every label value each label of an ony_ family may take, written out here so a change
// to the closed sets in the code is a change to this test too.
var allowed = map[string][]string{
	"risk":     {"low", "medium", "high", "critical", "other"},
	"outcome":  {"approved", "denied", "expired", "cancelled", "other"},
	"channel":  {"console", "webhook", "slack", "telegram", "sms", "call", "other"},
	"provider": {"builtin", "slack", "telegram", "twilio", "signalwire", "telnyx", "plivo", "none", "other"},
	"result":   {"sent", "error", "capped", "no_provider", "delivered", "failed", "refused", "bad_url", "other"},
	"state":    {"available", "pending", "retryable", "running", "scheduled", "other"},
	"kind":     append(redact.Kinds(), "custom", "other"),
	"status":   {"1xx", "2xx", "3xx", "4xx", "5xx", "other"},
}

// hostile are values that must never become a label: ids, contact details, free text, secrets.
var hostile = []string{
	"0192f3a4-7b1c-7def-8abc-1234567890ab",
	"canary-mail-7f3a@example.test",
	"+15557654321",
	"CANARY-TITLE-91b",
	"sk_live_CANARY4eC39HqLyjWDarjtT1zdp7dc",
	"AKIAIOSFODNN7CANARY1",
	"ony_dev_CANARYTOKEN",
	"GET /v1/handoffs/0192f3a4-7b1c-7def-8abc-1234567890ab",
	"custom:CANARY-RULE-NAME",
	"expired ", " Approved", "",
}

type series struct {
	family string
	labels map[string]string
	value  float64
}

func gather(t *testing.T, r *metrics.Recorder) []series {
	t.Helper()
	mfs, err := r.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []series
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			s := series{family: mf.GetName(), labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			s.value = value(mf.GetType(), m)
			out = append(out, s)
		}
	}
	return out
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

func find(ss []series, family string, labels map[string]string) (float64, bool) {
	for _, s := range ss {
		if s.family != family || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && s.labels[k] == v
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func scrape(t *testing.T, r *metrics.Recorder) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestLabelsOutsideClosedSetsBecomeOther: every recorder method given values outside its closed sets
// counts them under "other"; no such value reaches a label or the scrape.
func TestLabelsOutsideClosedSetsBecomeOther(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name   string
		record func(r *metrics.Recorder, v string)
		family string
		labels map[string]string
	}{
		{"created", func(r *metrics.Recorder, v string) { r.HandoffCreated(v) },
			"ony_handoffs_created_total", map[string]string{"risk": "other"}},
		{"finished", func(r *metrics.Recorder, v string) { r.HandoffFinished(v, time.Second) },
			"ony_handoffs_finished_total", map[string]string{"outcome": "other"}},
		{"decision", func(r *metrics.Recorder, v string) { r.HandoffFinished(v, time.Second) },
			"ony_handoff_decision_seconds", map[string]string{"outcome": "other"}},
		{"send channel and provider", func(r *metrics.Recorder, v string) { r.Send(v, v, nil) },
			"ony_escalation_sends_total", map[string]string{"channel": "other", "provider": "other", "result": "sent"}},
		{"held", func(r *metrics.Recorder, v string) { r.SendHeld(v, v) },
			"ony_escalation_sends_total", map[string]string{"channel": "other", "provider": "none", "result": "other"}},
		{"callback", func(r *metrics.Recorder, v string) { r.Callback(v) },
			"ony_callback_deliveries_total", map[string]string{"result": "other"}},
		{"redaction", func(r *metrics.Recorder, v string) { r.Redacted(v) },
			"ony_redactions_total", map[string]string{"kind": "other"}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := metrics.New()
			n := 0
			for _, v := range hostile {
				if c.name == "redaction" && strings.HasPrefix(v, redact.CustomKindPrefix) {
					continue // a custom rule counts as "custom" (below)
				}
				c.record(r, v)
				n++
			}
			ss := gather(t, r)
			if got, ok := find(ss, c.family, c.labels); !ok || got != float64(n) {
				t.Errorf("%s%v = %v (present %v), want %d", c.family, c.labels, got, ok, n)
			}
			checkClosed(t, ss)
			checkAbsent(t, scrape(t, r), hostile)
		})
	}

	t.Run("custom redaction rule", func(t *testing.T) {
		t.Parallel()
		r := metrics.New()
		r.Redacted("custom:CANARY-RULE-NAME")
		if got, _ := find(gather(t, r), "ony_redactions_total", map[string]string{"kind": "custom"}); got != 1 {
			t.Errorf("custom rule counted %v, want 1 under kind=custom", got)
		}
		checkAbsent(t, scrape(t, r), []string{"CANARY-RULE-NAME"})
	})

	t.Run("http", func(t *testing.T) {
		t.Parallel()
		r := metrics.New()
		for _, p := range []string{
			"GET /v1/handoffs/0192f3a4-7b1c-7def-8abc-1234567890ab", // an id in a literal
			"GET /u/canary-mail-7f3a@example.test",
			"GET /v1/phones/+15557654321",
			"GET /v1/handoffs/CANARY-TITLE-91b with spaces",
			"GET /v1/handoffs?token=ony_dev_CANARYTOKEN",
			"v1/handoffs/{id}", // not a pattern
			"GET /" + strings.Repeat("a", 200),
		} {
			r.HTTPRequest(p, 200, time.Millisecond)
		}
		r.HTTPRequest("GET /v1/handoffs/{id}", 999, time.Millisecond)
		ss := gather(t, r)
		if got, _ := find(ss, "ony_http_requests_total", map[string]string{"route": "other", "status": "2xx"}); got != 7 {
			t.Errorf("other routes counted %v, want 7", got)
		}
		if got, _ := find(ss, "ony_http_requests_total", map[string]string{"route": "GET /v1/handoffs/{id}", "status": "other"}); got != 1 {
			t.Errorf("status 999 counted %v under other, want 1", got)
		}
		checkClosed(t, ss)
		checkAbsent(t, scrape(t, r), append(hostile, "0192f3a4", "canary", "5557654321", "CANARYTOKEN", "aaaaaaaa"))
	})

	t.Run("job states", func(t *testing.T) {
		t.Parallel()
		r := metrics.New()
		r.WatchJobQueue(func(context.Context) (map[string]int64, error) {
			return map[string]int64{"available": 3, "running": 1, "0192f3a4-7b1c-7def-8abc-1234567890ab": 2, "canary-mail-7f3a@example.test": 5}, nil
		}, nil)
		ss := gather(t, r)
		for st, want := range map[string]float64{"available": 3, "running": 1, "pending": 0, "retryable": 0, "scheduled": 0, "other": 7} {
			if got, ok := find(ss, "ony_job_queue_depth", map[string]string{"state": st}); !ok || got != want {
				t.Errorf("ony_job_queue_depth{state=%q} = %v (present %v), want %v", st, got, ok, want)
			}
		}
		checkClosed(t, ss)
		checkAbsent(t, scrape(t, r), hostile)
	})
}

// checkClosed fails on any label of an ony_ family whose value is outside its closed set (routes
// are checked by the route test).
func checkClosed(t *testing.T, ss []series) {
	t.Helper()
	for _, s := range ss {
		if !strings.HasPrefix(s.family, "ony_") {
			continue
		}
		for k, v := range s.labels {
			if k == "route" {
				continue
			}
			set, ok := allowed[k]
			if !ok {
				t.Errorf("%s has label %q, which no closed set covers", s.family, k)
				continue
			}
			if !slices.Contains(set, v) {
				t.Errorf("%s{%s=%q}: value outside the closed set", s.family, k, v)
			}
		}
	}
}

func checkAbsent(t *testing.T, body string, canaries []string) {
	t.Helper()
	for _, c := range canaries {
		if strings.TrimSpace(c) != "" && strings.Contains(body, c) {
			t.Errorf("the scrape carries %q", c)
		}
	}
}

// TestKnownValuesKept: values inside the closed sets are counted as themselves — the built-in channel
// kinds, every provider, every detector, the final states and the risks.
func TestKnownValuesKept(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	providers := []string{"builtin", "slack", "telegram", "twilio", "signalwire", telnyx.Name, plivo.Name}
	kinds := app.BuiltinKinds().Names()
	for _, k := range kinds {
		for _, p := range providers {
			r.Send(k, p, nil)
			r.Send(k, p, errors.New("provider down"))
		}
		r.SendHeld(k, metrics.SendCapped)
		r.SendHeld(k, metrics.SendNoProvider)
	}
	for _, k := range redact.Kinds() {
		r.Redacted(k)
	}
	risks := []string{"low", "medium", "high", "critical"}
	for _, v := range risks {
		r.HandoffCreated(v)
	}
	outcomes := []string{"approved", "denied", "expired", "cancelled"}
	for _, v := range outcomes {
		r.HandoffFinished(v, time.Minute)
	}
	results := []string{metrics.CallbackDelivered, metrics.CallbackFailed, metrics.CallbackRefused, metrics.CallbackBadURL}
	for _, v := range results {
		r.Callback(v)
	}
	ss := gather(t, r)
	want := func(family string, labels map[string]string, n float64) {
		t.Helper()
		if got, ok := find(ss, family, labels); !ok || got != n {
			t.Errorf("%s%v = %v (present %v), want %v", family, labels, got, ok, n)
		}
	}
	for _, k := range kinds {
		for _, p := range providers {
			want("ony_escalation_sends_total", map[string]string{"channel": k, "provider": p, "result": "sent"}, 1)
			want("ony_escalation_sends_total", map[string]string{"channel": k, "provider": p, "result": "error"}, 1)
		}
		want("ony_escalation_sends_total", map[string]string{"channel": k, "provider": "none", "result": "capped"}, 1)
		want("ony_escalation_sends_total", map[string]string{"channel": k, "provider": "none", "result": "no_provider"}, 1)
	}
	for _, k := range redact.Kinds() {
		want("ony_redactions_total", map[string]string{"kind": k}, 1)
	}
	for _, v := range risks {
		want("ony_handoffs_created_total", map[string]string{"risk": v}, 1)
	}
	for _, v := range outcomes {
		want("ony_handoffs_finished_total", map[string]string{"outcome": v}, 1)
		want("ony_handoff_decision_seconds", map[string]string{"outcome": v}, 1)
	}
	for _, v := range results {
		want("ony_callback_deliveries_total", map[string]string{"result": v}, 1)
	}
	for _, s := range ss {
		for k, v := range s.labels {
			if v == metrics.Other {
				t.Errorf("%s{%s=other}: a known value was not kept", s.family, k)
			}
		}
	}
}

// TestRouteLabel: a registered pattern is its own label; no pattern is "unmatched"; anything that
// is not a pattern, or looks like it holds an id, is "other"; and the distinct patterns are capped.
func TestRouteLabel(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"GET /v1/handoffs/{id}":             "GET /v1/handoffs/{id}",
		"POST /v1/handoffs":                 "POST /v1/handoffs",
		"GET /{$}":                          "GET /{$}",
		"/console/":                         "/console/",
		"POST /hooks/twilio/sms":            "POST /hooks/twilio/sms",
		"GET /console/static/":              "GET /console/static/",
		"":                                  metrics.RouteUnmatched,
		"GET /v1/handoffs/019283746":        metrics.Other,
		"GET /v1/a@b":                       metrics.Other,
		"get /v1/handoffs":                  metrics.Other,
		"GET /x/" + strings.Repeat("b", 40): metrics.Other,
	}
	for pattern, want := range cases {
		r := metrics.New()
		r.HTTPRequest(pattern, http.StatusOK, time.Millisecond)
		if _, ok := find(gather(t, r), "ony_http_requests_total", map[string]string{"route": want, "status": "2xx"}); !ok {
			t.Errorf("pattern %q: no series with route %q", pattern, want)
		}
	}

	r := metrics.New()
	for i := range 300 {
		r.HTTPRequest(fmt.Sprintf("GET /r%c%c/{id}", 'a'+i/26%26, 'a'+i%26), http.StatusOK, time.Millisecond)
	}
	routes := map[string]bool{}
	for _, s := range gather(t, r) {
		if s.family == "ony_http_requests_total" {
			routes[s.labels["route"]] = true
		}
	}
	if len(routes) != 257 || !routes[metrics.Other] {
		t.Errorf("%d distinct route labels (other present: %v), want 256 and other", len(routes), routes[metrics.Other])
	}
}

// TestStatusClass maps statuses to classes; nothing written is net/http's 200.
func TestStatusClass(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{0: "2xx", 101: "1xx", 200: "2xx", 204: "2xx", 302: "3xx", 404: "4xx", 429: "4xx", 503: "5xx", 99: "other", 600: "other"} {
		if got := metrics.StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestJobQueueCountFails: a failing count leaves the queue depth out of that scrape, and the rest of
// the scrape is served.
func TestJobQueueCountFails(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.HandoffCreated("high")
	r.WatchJobQueue(func(context.Context) (map[string]int64, error) {
		return nil, errors.New("database at 10.0.0.9 refused")
	}, nil)
	body := scrape(t, r)
	if strings.Contains(body, "ony_job_queue_depth{") || strings.Contains(body, "10.0.0.9") {
		t.Errorf("the failed count reached the scrape:\n%s", body)
	}
	if !strings.Contains(body, `ony_handoffs_created_total{risk="high"} 1`) {
		t.Errorf("the rest of the scrape is missing:\n%s", body)
	}
}

// TestNilRecorder: a nil recorder records nothing and does not panic; its handler is a 404.
func TestNilRecorder(t *testing.T) {
	t.Parallel()
	var r *metrics.Recorder
	r.HandoffCreated("high")
	r.HandoffFinished("approved", time.Second)
	r.RungDelivered(time.Second)
	r.CreateHeld()
	r.Send("sms", "twilio", nil)
	r.SendHeld("sms", metrics.SendCapped)
	r.Callback(metrics.CallbackDelivered)
	r.AuditAppended()
	r.AuditSequenced(3)
	r.Redacted(redact.KindJWT)
	r.HTTPRequest("GET /healthz", 200, time.Millisecond)
	r.WatchJobQueue(func(context.Context) (map[string]int64, error) { return nil, nil }, nil)
	if r.Registry() != nil {
		t.Error("a nil recorder has a registry")
	}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil recorder's handler: %d, want 404", rec.Code)
	}
}

// TestScrapeFormat: the handler serves Prometheus' text format with the runtime and process
// collectors on the recorder's own registry (not the global one).
func TestScrapeFormat(t *testing.T) {
	t.Parallel()
	r := metrics.New()
	r.AuditAppended()
	r.AuditSequenced(2)
	r.RungDelivered(1500 * time.Millisecond)
	r.CreateHeld()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := testhttp.Client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	for _, want := range []string{"go_goroutines ", "process_start_time_seconds ", "ony_audit_records_appended_total 1",
		"ony_audit_records_sequenced_total 2", `ony_escalation_rung_lateness_seconds_bucket{le="2.5"} 1`,
		"ony_handoff_creates_held_total 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
