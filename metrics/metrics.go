// Package metrics holds Ony's Prometheus registry and the metrics it exports on the operator's
// listener; every label value comes from a closed set here, so a scrape carries no personal data.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/redact"
)

// Other is the label value of anything outside a label's closed set.
const Other = "other"

// The closed sets. A value not listed is counted as Other: a label must never carry an id, an
// address, free text or anything else that grows with use or names a person.
var (
	risks      = set("low", "medium", "high", "critical")
	outcomes   = set("approved", "denied", "expired", "cancelled")
	channels   = set("console", "webhook", "slack", "telegram", "sms", "call")
	providers  = set("builtin", "slack", "telegram", "twilio", "signalwire", "telnyx", "plivo")
	sendHeld   = set(SendCapped, SendNoProvider)
	callbacks  = set(CallbackDelivered, CallbackFailed, CallbackRefused, CallbackBadURL)
	jobStates  = []string{"available", "pending", "retryable", "running", "scheduled"}
	jobStateOK = set(jobStates...)
	// Custom rules are the operator's; their names are counted together as "custom".
	redactionKinds = set(append(redact.Kinds(), "custom")...)
)

// Send results.
const (
	SendSent       = "sent"
	SendError      = "error"
	SendCapped     = "capped"
	SendNoProvider = "no_provider"
)

// Callback delivery results.
const (
	CallbackDelivered = "delivered" // the agent's endpoint answered 2xx
	CallbackFailed    = "failed"    // an error or a non-2xx answer; the job retries
	CallbackRefused   = "refused"   // the address is not public: never retried
	CallbackBadURL    = "bad_url"
)

// Route labels that are not a pattern.
const (
	RouteUnmatched = "unmatched" // no route matched (404, 405)
	maxRoutes      = 256         // distinct patterns kept; past this every new one is Other
)

// Recorder holds the registry and Ony's metrics. A nil *Recorder records nothing, so services built
// without one (most tests) need no checks.
type Recorder struct {
	reg *prometheus.Registry

	created      *prometheus.CounterVec
	finished     *prometheus.CounterVec
	decision     *prometheus.HistogramVec
	lateness     prometheus.Histogram
	held         prometheus.Counter
	sends        *prometheus.CounterVec
	callbacks    *prometheus.CounterVec
	appended     prometheus.Counter
	sequenced    prometheus.Counter
	redactions   *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	httpSeconds  *prometheus.HistogramVec

	routesMu sync.RWMutex
	routes   map[string]bool
}

// New builds a recorder on its own registry (never the global default one), with Go runtime and
// process collectors.
func New() *Recorder {
	r := &Recorder{
		reg: prometheus.NewRegistry(),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_handoffs_created_total",
			Help: "Handoffs created, by server-derived risk."}, []string{"risk"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_handoffs_finished_total",
			Help: "Handoffs that reached a final state, by outcome."}, []string{"outcome"}),
		decision: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ony_handoff_decision_seconds",
			Help:    "Time from a handoff's creation to its final state, by outcome.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400}}, []string{"outcome"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ony_escalation_rung_lateness_seconds",
			Help:    "Time from an escalation rung's due time to a provider accepting its notification.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}),
		held: prometheus.NewCounter(prometheus.CounterOpts{Name: "ony_handoff_creates_held_total",
			Help: "Creates that met the admission gate narrowed because escalation rungs ran late: admitted one at a time, or refused after its wait."}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_escalation_sends_total",
			Help: "Notification attempts, by channel kind, provider and result (sent, error, capped, no_provider)."},
			[]string{"channel", "provider", "result"}),
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_callback_deliveries_total",
			Help: "Attempts to deliver a final state to an agent's callback URL, by result."}, []string{"result"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "ony_audit_records_appended_total",
			Help: "Audit records queued inside the transaction of the change they record (a rolled-back one's included)."}),
		sequenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "ony_audit_records_sequenced_total",
			Help: "Audit records given their index in an organization's Merkle log (committed)."}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_redactions_total",
			Help: "Secrets the redactor found and replaced, by detector kind (custom rules count as custom)."}, []string{"kind"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ony_http_requests_total",
			Help: "HTTP requests on the public listener, by route pattern and status class."}, []string{"route", "status"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ony_http_request_duration_seconds",
			Help:    "HTTP request duration on the public listener, by route pattern (long-polls included).",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}, []string{"route"}),
		routes: map[string]bool{},
	}
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.created, r.finished, r.decision, r.lateness, r.held, r.sends, r.callbacks, r.appended, r.sequenced, r.redactions,
		r.httpRequests, r.httpSeconds)
	// The small sets start at zero, so a rate over them works before the first event.
	for v := range risks {
		r.created.WithLabelValues(v)
	}
	for v := range outcomes {
		r.finished.WithLabelValues(v)
	}
	for v := range callbacks {
		r.callbacks.WithLabelValues(v)
	}
	return r
}

// Registry is the recorder's own registry.
func (r *Recorder) Registry() *prometheus.Registry {
	if r == nil {
		return nil
	}
	return r.reg
}

// Handler serves the registry in Prometheus' text format. A collector that fails (the job queue's
// count) is left out of that scrape; the rest is served.
func (r *Recorder) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// HandoffCreated counts a new handoff at its server-derived risk.
func (r *Recorder) HandoffCreated(risk string) {
	if r == nil {
		return
	}
	r.created.WithLabelValues(oneOf(risks, risk)).Inc()
}

// HandoffFinished counts a handoff reaching a final state, took after its creation.
func (r *Recorder) HandoffFinished(outcome string, took time.Duration) {
	if r == nil {
		return
	}
	o := oneOf(outcomes, outcome)
	r.finished.WithLabelValues(o).Inc()
	r.decision.WithLabelValues(o).Observe(max(took, 0).Seconds())
}

// RungDelivered observes how long after its rung was due a notification was accepted.
func (r *Recorder) RungDelivered(late time.Duration) {
	if r == nil {
		return
	}
	r.lateness.Observe(max(late, 0).Seconds())
}

// CreateHeld counts a create that met the admission gate narrowed.
func (r *Recorder) CreateHeld() {
	if r == nil {
		return
	}
	r.held.Inc()
}

// Send counts one provider's attempt at a notification on a channel kind.
func (r *Recorder) Send(channel, provider string, err error) {
	if r == nil {
		return
	}
	res := SendSent
	if err != nil {
		res = SendError
	}
	r.sends.WithLabelValues(oneOf(channels, channel), oneOf(providers, provider), res).Inc()
}

// SendHeld counts a notification no provider was asked to make: why is SendCapped or SendNoProvider.
func (r *Recorder) SendHeld(channel, why string) {
	if r == nil {
		return
	}
	r.sends.WithLabelValues(oneOf(channels, channel), "none", oneOf(sendHeld, why)).Inc()
}

// Callback counts one attempt at a callback delivery.
func (r *Recorder) Callback(result string) {
	if r == nil {
		return
	}
	r.callbacks.WithLabelValues(oneOf(callbacks, result)).Inc()
}

// AuditAppended counts an audit record queued.
func (r *Recorder) AuditAppended() {
	if r == nil {
		return
	}
	r.appended.Inc()
}

// AuditSequenced counts n audit records sequenced into their log.
func (r *Recorder) AuditSequenced(n int) {
	if r == nil || n <= 0 {
		return
	}
	r.sequenced.Add(float64(n))
}

// Redacted counts one secret the redactor replaced, by its finding kind.
func (r *Recorder) Redacted(kind string) {
	if r == nil {
		return
	}
	if strings.HasPrefix(kind, redact.CustomKindPrefix) {
		kind = "custom"
	}
	r.redactions.WithLabelValues(oneOf(redactionKinds, kind)).Inc()
}

// HTTPRequest counts a request by the ServeMux pattern that served it (r.Pattern) and its status.
func (r *Recorder) HTTPRequest(pattern string, status int, took time.Duration) {
	if r == nil {
		return
	}
	route := r.route(pattern)
	r.httpRequests.WithLabelValues(route, StatusClass(status)).Inc()
	r.httpSeconds.WithLabelValues(route).Observe(max(took, 0).Seconds())
}

// StatusClass is "1xx" … "5xx"; a status that wrote nothing (0) is net/http's implicit 200.
func StatusClass(status int) string {
	if status == 0 {
		status = http.StatusOK
	}
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return Other
}

// patternShape is what a ServeMux pattern registered in code looks like: an optional method and a
// path of literal and {wildcard} segments. Patterns are written in code (and provider names checked
// by the channel registry), never built from a request, so a matched pattern holds no id; the shape
// check, the id-like segment check and the cap on distinct patterns are the backstop.
var patternShape = lazyregexp.New(`^(?:[A-Z]{3,7} )?/[A-Za-z0-9_./{}$-]*$`)

// route is pattern's label: the pattern, RouteUnmatched, or Other.
func (r *Recorder) route(pattern string) string {
	if pattern == "" {
		return RouteUnmatched
	}
	r.routesMu.RLock()
	ok, seen := r.routes[pattern]
	r.routesMu.RUnlock()
	if seen {
		if ok {
			return pattern
		}
		return Other
	}
	ok = len(pattern) <= 128 && patternShape.MatchString(pattern) && !idLike(pattern)
	r.routesMu.Lock()
	defer r.routesMu.Unlock()
	if len(r.routes) >= maxRoutes {
		return Other
	}
	r.routes[pattern] = ok
	if ok {
		return pattern
	}
	return Other
}

// idLike reports a literal path segment that could be an identifier: long, or with a run of digits.
func idLike(pattern string) bool {
	_, path, _ := strings.Cut(pattern, "/")
	for seg := range strings.SplitSeq(path, "/") {
		if strings.HasPrefix(seg, "{") {
			continue
		}
		if len(seg) > 32 || digitRun(seg) >= 4 {
			return true
		}
	}
	return false
}

func digitRun(s string) int {
	most, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			most = max(most, run)
		} else {
			run = 0
		}
	}
	return most
}

// JobCounter counts the job queue's unfinished jobs by state.
type JobCounter func(ctx context.Context) (map[string]int64, error)

// WatchJobQueue exports ony_job_queue_depth{state}, counted by count on each scrape (within a
// couple of seconds; a failed count leaves the family out of that scrape and is logged).
func (r *Recorder) WatchJobQueue(count JobCounter, logger *slog.Logger) {
	if r == nil || count == nil {
		return
	}
	r.reg.MustRegister(&jobQueue{count: count, log: logger,
		desc: prometheus.NewDesc("ony_job_queue_depth", "Unfinished durable jobs (escalation rungs, sends, callbacks, expiries…) by state.",
			[]string{"state"}, nil)})
}

type jobQueue struct {
	count JobCounter
	log   *slog.Logger
	desc  *prometheus.Desc
}

func (q *jobQueue) Describe(ch chan<- *prometheus.Desc) { ch <- q.desc }

func (q *jobQueue) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := q.count(ctx)
	if err != nil {
		if q.log != nil {
			q.log.Warn("metrics: counting the job queue failed", "err", err)
		}
		return
	}
	var other int64
	for st, n := range counts {
		if !jobStateOK[st] {
			other += n
		}
	}
	for _, st := range jobStates {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(counts[st]), st)
	}
	if other > 0 {
		ch <- prometheus.MustNewConstMetric(q.desc, prometheus.GaugeValue, float64(other), Other)
	}
}

// JobStates are the unfinished job states the queue depth reports.
func JobStates() []string { return append([]string(nil), jobStates...) }

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

func oneOf(set map[string]bool, v string) string {
	if set[v] {
		return v
	}
	return Other
}
