package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
)

// TestCreate checks the 201 answer of a create in full, and that the payload's content is never shown
// by any endpoint an agent or a person can call.
func TestCreate(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		agent := agentRaw(t, in)
		canary := "PAYLOAD_CANARY_" + randHex(8)
		content := "rm -rf /srv/data # " + canary
		before := time.Now().UTC().Truncate(time.Second)
		r := agent.do("POST", "/v1/handoffs", map[string]any{
			"action":  "shell.exec",
			"title":   "Clean the data directory",
			"summary": "frees disk",
			"payload": map[string]any{"kind": "command", "content": content},
			"labels":  map[string]string{"env": "staging", "team": "infra"},
		})
		h := r.handoff(t, http.StatusCreated)
		after := time.Now().UTC().Add(time.Second)

		if _, err := uuid.Parse(h.ID); err != nil {
			t.Fatalf("id %q is not a UUID", h.ID)
		}
		if got := r.Header.Get("Location"); got != "/v1/handoffs/"+h.ID {
			t.Errorf("Location = %q", got)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type = %q", ct)
		}
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("a fresh create says Idempotent-Replayed")
		}
		if h.Status != "pending" || h.Action != "shell.exec" || h.Title != "Clean the data directory" || h.Summary != "frees disk" {
			t.Errorf("fields: %+v", h)
		}
		switch h.Risk {
		case "low", "medium", "high", "critical":
		default:
			t.Errorf("risk = %q", h.Risk)
		}
		if h.Risk == "low" || len(h.RiskReasons) == 0 {
			t.Errorf("rm -rf should raise the risk: %q %v", h.Risk, h.RiskReasons)
		}
		if h.CreatedAt.Before(before) || h.CreatedAt.After(after) {
			t.Errorf("created_at %v not in [%v, %v]", h.CreatedAt, before, after)
		}
		if got := h.ExpiresAt.Sub(h.CreatedAt); got != time.Hour {
			t.Errorf("expires_at - created_at = %v, want the default 1h", got)
		}
		if want := in.URL + "/console/handoffs/" + h.ID; h.ConsoleURL != want {
			t.Errorf("console_url = %q, want %q", h.ConsoleURL, want)
		}
		wantOpts := []client.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny", Approves: false}}
		if !reflect.DeepEqual(h.Options, wantOpts) {
			t.Errorf("options = %+v", h.Options)
		}
		if !reflect.DeepEqual(h.Labels, map[string]string{"env": "staging", "team": "infra"}) {
			t.Errorf("labels = %v", h.Labels)
		}
		if h.Decision != nil {
			t.Errorf("pending handoff has a decision")
		}
		raw := r.object(t)
		if p, ok := raw["payload"].(map[string]any); !ok || len(p) != 2 || p["kind"] != "command" || p["bytes"] != float64(len(content)) {
			t.Errorf("payload view = %#v, want exactly {kind, bytes}", raw["payload"])
		}
		for _, k := range []string{"callback_url", "content", "decision"} {
			if _, ok := raw[k]; ok {
				t.Errorf("create answer has %q", k)
			}
		}

		// The payload content never comes back: not on create, get, list, wait, decide, a refused
		// second decision, or a replayed create.
		seen := [][]byte{r.Body}
		seen = append(seen, agent.do("GET", "/v1/handoffs/"+h.ID, nil).Body)
		g := agent.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK)
		if g.Payload == nil || g.Payload.Kind != "command" || g.Payload.Bytes != len(content) || g.Risk != h.Risk {
			t.Errorf("get: %+v", g)
		}
		seen = append(seen, agent.do("GET", "/v1/handoffs", nil).Body)
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		seen = append(seen, member.do("GET", "/v1/handoffs", nil).Body)
		seen = append(seen, member.do("GET", "/v1/handoffs/"+h.ID, nil).Body)
		seen = append(seen, agent.do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=1s", nil).Body)
		dec := member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"})
		dec.handoff(t, http.StatusOK)
		seen = append(seen, dec.Body)
		seen = append(seen, member.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "deny"}).Body)
		seen = append(seen, agent.do("GET", "/v1/handoffs/"+h.ID+"/wait", nil).Body)
		seen = append(seen, agent.do("POST", "/v1/handoffs/"+h.ID+"/cancel", nil).Body)
		for i, b := range seen {
			if strings.Contains(string(b), canary) || strings.Contains(string(b), "rm -rf") {
				t.Errorf("response %d shows the payload content: %s", i, b)
			}
		}
	})
}

// TestCreateCustomOptions checks options are echoed as given.
func TestCreateCustomOptions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		opts := []client.Option{{ID: "retry", Label: "Retry it", Approves: true}, {ID: "skip", Label: "Skip", Approves: false}, {ID: "abort", Label: "Abort run"}}
		h := mustCreate(t, in.Agent(t), client.CreateRequest{Action: "ci.job", Title: "Flaky test", Options: opts})
		if !reflect.DeepEqual(h.Options, opts) {
			t.Fatalf("options = %+v", h.Options)
		}
		if h.Payload != nil || h.Labels != nil {
			t.Fatalf("absent payload/labels shown: %+v", h)
		}
	})
}

// TestCreateStripsBidi posts every string a person reads with bidirectional overrides, isolates and
// marks in it: what is stored, shown by the API and carried in the gist has none of them, and the text
// around them is kept as sent (escaped surrogate pairs included).
func TestCreateStripsBidi(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		agent := agentRaw(t, in)
		// U+202E makes "eliforp" display as "profile"; U+2066..U+2069 and U+200F are the other kinds.
		body := `{"action":"deploy","title":"  \u202eDeploy \u202eeliforp\u202c now \ud83d\ude80",` +
			`"summary":"line\u2067 one\u2069\nline two\u200f",` +
			`"options":[{"id":"go","label":"Go \u202dahead\u202c","approves":true},{"id":"stop","label":"\u061cStop"}],` +
			`"labels":{"env":"\u2066prod\u2069"}}`
		h := agent.do("POST", "/v1/handoffs", body).handoff(t, http.StatusCreated)
		got := agent.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK)
		for _, v := range []client.Handoff{h, got} {
			if v.Title != "Deploy eliforp now 🚀" || v.Summary != "line one\nline two" {
				t.Errorf("title %q, summary %q", v.Title, v.Summary)
			}
			want := []client.Option{{ID: "go", Label: "Go ahead", Approves: true}, {ID: "stop", Label: "Stop"}}
			if !reflect.DeepEqual(v.Options, want) {
				t.Errorf("options = %+v", v.Options)
			}
			if v.Labels["env"] != "prod" {
				t.Errorf("labels = %q", v.Labels)
			}
			for _, s := range []string{v.Title, v.Summary, v.Gist, v.Options[0].Label, v.Options[1].Label, v.Labels["env"]} {
				if i := strings.IndexFunc(s, func(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }); i >= 0 {
					t.Errorf("bidi control left in %q", s)
				}
			}
			if !strings.Contains(v.Gist, "Deploy eliforp now") {
				t.Errorf("gist %q", v.Gist)
			}
		}
	})
}

// TestRiskClaimDiscarded posts one handoff with every shape of risk claim: the answer's risk is the
// server's own, and the claim's words never come back.
func TestRiskClaimDiscarded(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		agent := agentRaw(t, in)
		base := `"action":"shell.exec","title":"Wipe the cache","labels":{"env":"production"},` +
			`"payload":{"kind":"command","content":"sudo rm -rf /var/cache/app"}`
		claims := map[string]string{
			"absent":   ``,
			"low":      `,"risk":"low"`,
			"critical": `,"risk":"critical"`,
			"object":   `,"risk":{"x":1,"level":"CANARY_RISK"}`,
			"null":     `,"risk":null`,
			"array":    `,"risk":["low","CANARY_RISK"]`,
			"number":   `,"risk":0`,
			"canary":   `,"risk":"CANARY_RISK"`,
			"first":    `"risk":"CANARY_RISK",`, // before the other fields (a repeated key would be refused)
		}
		type assessed struct {
			Risk    string   `json:"risk"`
			Reasons []string `json:"risk_reasons"`
		}
		var want *assessed
		for name, claim := range claims {
			body := "{" + base + claim + "}"
			if strings.HasSuffix(claim, ",") {
				body = "{" + claim + base + "}"
			}
			r := agent.do("POST", "/v1/handoffs", body)
			h := r.handoff(t, http.StatusCreated)
			got := assessed{h.Risk, h.RiskReasons}
			if want == nil {
				want = &got
			} else if !reflect.DeepEqual(got, *want) {
				t.Errorf("claim %s: risk %+v, want %+v", name, got, *want)
			}
			for _, b := range [][]byte{r.Body, agent.do("GET", "/v1/handoffs/"+h.ID, nil).Body} {
				if strings.Contains(strings.ToUpper(string(b)), "CANARY_RISK") {
					t.Errorf("claim %s echoed: %s", name, b)
				}
			}
		}
		if want.Risk == "low" || len(want.Reasons) == 0 {
			t.Errorf("derived risk %+v: sudo rm -rf in production should not be low", *want)
		}
		if list := agent.do("GET", "/v1/handoffs", nil); strings.Contains(string(list.Body), "CANARY_RISK") {
			t.Errorf("list echoes the claim")
		}
	})
}

// TestCreateValidation runs every way a create can be refused, on one instance per dialect with a
// small payload limit. No refusal quotes the payload.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	const limit = 512
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, func(c *config.Config) { c.Handoffs.MaxPayloadBytes = limit })
		canary := "SECRET_CANARY_" + randHex(8)
		payload := map[string]any{"kind": "command", "content": "echo " + canary}
		body := func(mod func(m map[string]any)) map[string]any {
			m := map[string]any{"action": "shell.exec", "title": "Run it", "payload": payload}
			mod(m)
			return m
		}
		set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
		del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
		opt := func(id string, approves bool) map[string]any {
			return map[string]any{"id": id, "label": strings.ToUpper(id), "approves": approves}
		}
		big := strings.Repeat(canary, limit/len(canary)+1)
		cases := []struct {
			name   string
			body   any
			hdr    []string
			status int
			code   string
		}{
			{"action with space", body(set("action", "Shell Exec")), nil, 400, "invalid_action"},
			{"action empty", body(set("action", "")), nil, 400, "invalid_action"},
			{"action missing", body(del("action")), nil, 400, "invalid_action"},
			{"action empty segment", body(set("action", "a..b")), nil, 400, "invalid_action"},
			{"action trailing dot", body(set("action", "shell.")), nil, 400, "invalid_action"},
			{"action too long", body(set("action", strings.Repeat("a", 101))), nil, 400, "invalid_action"},
			{"title missing", body(del("title")), nil, 400, "invalid_title"},
			{"title blank", body(set("title", "   ")), nil, 400, "invalid_title"},
			{"title 201 chars", body(set("title", strings.Repeat("x", 201))), nil, 400, "invalid_title"},
			{"title 201 runes", body(set("title", strings.Repeat("é", 201))), nil, 400, "invalid_title"},
			{"title newline", body(set("title", "one\ntwo")), nil, 400, "invalid_title"},
			{"title bell", body(set("title", "ding\u0007")), nil, 400, "invalid_title"},
			{"title escape", body(set("title", "\x1b[31mred")), nil, 400, "invalid_title"},
			{"summary control", body(set("summary", "a\x00b")), nil, 400, "invalid_summary"},
			{"summary too long", body(set("summary", strings.Repeat("s", 4001))), nil, 400, "invalid_summary"},
			{"one option", body(set("options", []any{opt("yes", true)})), nil, 400, "invalid_options"},
			{"eleven options", body(set("options", func() []any {
				o := []any{opt("yes", true)}
				for i := range 10 {
					o = append(o, opt(fmt.Sprintf("no%d", i), false))
				}
				return o
			}())), nil, 400, "invalid_options"},
			{"duplicate option ids", body(set("options", []any{opt("go", true), opt("go", false)})), nil, 400, "invalid_options"},
			{"no option approves", body(set("options", []any{opt("skip", false), opt("stop", false)})), nil, 400, "invalid_options"},
			{"every option approves", body(set("options", []any{opt("yes", true), opt("sure", true)})), nil, 400, "invalid_options"},
			{"option bad id", body(set("options", []any{opt("Yes!", true), opt("no", false)})), nil, 400, "invalid_options"},
			{"option without label", body(set("options", []any{map[string]any{"id": "yes", "approves": true}, opt("no", false)})), nil, 400, "invalid_options"},
			{"payload kind", body(set("payload", map[string]any{"kind": "binary", "content": canary})), nil, 400, "invalid_payload"},
			{"payload kind missing", body(set("payload", map[string]any{"content": canary})), nil, 400, "invalid_payload"},
			{"payload over limit", body(set("payload", map[string]any{"kind": "log", "content": big})), nil, 413, "payload_too_large"},
			{"payload content not a string", body(set("payload", map[string]any{"kind": "log", "content": []string{canary}})), nil, 400, "invalid_json"},
			{"body over limit", body(set("payload", map[string]any{"kind": "log", "content": strings.Repeat(canary, 100<<10/len(canary))})), nil, 413, "body_too_large"},
			{"unknown field", body(set("colour", "red")), nil, 400, "unknown_field"},
			{"unknown nested field", body(set("payload", map[string]any{"kind": "log", "content": canary, "secret": canary})), nil, 400, "unknown_field"},
			{"malformed JSON", `{"action":"shell.exec","title":"x","payload":{"kind":"log","content":"` + canary + `"`, nil, 400, "invalid_json"},
			{"syntax error", `{"action":"shell.exec",,"title":"` + canary + `"}`, nil, 400, "invalid_json"},
			{"empty body", "", nil, 400, "invalid_json"},
			{"array body", `[{"action":"shell.exec","title":"` + canary + `"}]`, nil, 400, "invalid_json"},
			{"string body", `"` + canary + `"`, nil, 400, "invalid_json"},
			{"number body", `42`, nil, 400, "invalid_json"},
			{"trailing garbage", `{"action":"shell.exec","title":"x"} ` + canary, nil, 400, "invalid_json"},
			{"two objects", `{"action":"shell.exec","title":"x"}{"action":"shell.exec","title":"` + canary + `"}`, nil, 400, "invalid_json"},
			{"wrong type", body(set("title", 7)), nil, 400, "invalid_json"},
			{"labels bad key", body(set("labels", map[string]string{"Env": "x"})), nil, 400, "invalid_labels"},
			{"labels control", body(set("labels", map[string]string{"env": "a\nb"})), nil, 400, "invalid_labels"},
			{"callback ftp", body(set("callback_url", "ftp://agent.example/cb")), nil, 400, "invalid_callback_url"},
			{"callback credentials", body(set("callback_url", "https://user:pass@agent.example/cb")), nil, 400, "invalid_callback_url"},
			{"callback relative", body(set("callback_url", "/cb")), nil, 400, "invalid_callback_url"},
			{"callback too long", body(set("callback_url", "https://agent.example/"+strings.Repeat("a", 2048))), nil, 400, "invalid_callback_url"},
			{"callback loopback", body(set("callback_url", "http://127.0.0.1:8080/cb?k="+canary)), nil, 400, "callback_url_refused"},
			{"callback metadata", body(set("callback_url", "http://169.254.169.254/latest/meta-data/")), nil, 400, "callback_url_refused"},
			{"callback localhost", body(set("callback_url", "http://localhost:6379/")), nil, 400, "callback_url_refused"},
			{"callback IPv6 loopback", body(set("callback_url", "http://[::1]:5432/")), nil, 400, "callback_url_refused"},
			{"callback mapped private", body(set("callback_url", "https://[::ffff:10.0.0.1]/cb")), nil, 400, "callback_url_refused"},
			{"callback decimal loopback", body(set("callback_url", "http://2130706433/cb")), nil, 400, "callback_url_refused"},
			{"callback unique local", body(set("callback_url", "http://[fd00::1]/cb")), nil, 400, "callback_url_refused"},
			{"timeout 9s", body(set("timeout", "9s")), nil, 400, "invalid_timeout"},
			{"timeout 9 seconds", body(set("timeout", 9)), nil, 400, "invalid_timeout"},
			{"timeout negative", body(set("timeout", "-10m")), nil, 400, "invalid_timeout"},
			{"timeout negative number", body(set("timeout", -600)), nil, 400, "invalid_timeout"},
			{"timeout garbage", body(set("timeout", "soon")), nil, 400, "invalid_timeout"},
			{"timeout object", body(set("timeout", map[string]any{"s": canary})), nil, 400, "invalid_timeout"},
			{"timeout over org max", body(set("timeout", "25h")), nil, 400, "timeout_too_long"},
			{"timeout over org max as number", body(set("timeout", 25*3600)), nil, 400, "timeout_too_long"},
			{"idempotency key too long", body(func(map[string]any) {}), []string{"Idempotency-Key", strings.Repeat("k", 256)}, 400, "invalid_idempotency_key"},
			// JSON text must be UTF-8; the decoder would store each bad byte or lone surrogate as U+FFFD.
			{"title invalid UTF-8", `{"action":"shell.exec","title":"Run ` + "\xff" + ` it","payload":{"kind":"log","content":"` + canary + `"}}`, nil, 400, "invalid_utf8"},
			{"title lone high surrogate", `{"action":"shell.exec","title":"Run \ud83d it"}`, nil, 400, "invalid_utf8"},
			{"title lone low surrogate", `{"action":"shell.exec","title":"Run \ude80 it"}`, nil, 400, "invalid_utf8"},
			{"title reversed surrogates", `{"action":"shell.exec","title":"Run \ude80\ud83d it"}`, nil, 400, "invalid_utf8"},
			{"summary invalid UTF-8", `{"action":"shell.exec","title":"x","summary":"caf` + "\xe9" + `"}`, nil, 400, "invalid_utf8"},
			{"option label invalid UTF-8", `{"action":"shell.exec","title":"x","options":[{"id":"y","label":"` + "\xc3" + `","approves":true},{"id":"n","label":"N"}]}`, nil, 400, "invalid_utf8"},
			{"label value invalid UTF-8", `{"action":"shell.exec","title":"x","labels":{"env":"pr` + "\x80" + `d"}}`, nil, 400, "invalid_utf8"},
			{"label key invalid UTF-8", `{"action":"shell.exec","title":"x","labels":{"e` + "\xff" + `v":"prod"}}`, nil, 400, "invalid_utf8"},
			{"payload invalid UTF-8", `{"action":"shell.exec","title":"x","payload":{"kind":"log","content":"` + canary + "\xfe" + `"}}`, nil, 400, "invalid_utf8"},
			// A key given twice: this decoder keeps the last, a proxy or log may have read the first.
			{"duplicate title", `{"action":"shell.exec","title":"harmless","title":"` + canary + `"}`, nil, 400, "duplicate_key"},
			{"duplicate title other case", `{"action":"shell.exec","title":"harmless","Title":"x"}`, nil, 400, "duplicate_key"},
			{"duplicate action escaped", `{"action":"shell.exec","title":"x","\u0061ction":"deploy"}`, nil, 400, "duplicate_key"},
			{"duplicate label", `{"action":"shell.exec","title":"x","labels":{"env":"staging","env":"prod"}}`, nil, 400, "duplicate_key"},
			{"duplicate option field", `{"action":"shell.exec","title":"x","options":[{"id":"y","label":"Y","approves":false,"approves":true},{"id":"n","label":"N"}]}`, nil, 400, "duplicate_key"},
			{"duplicate payload field", `{"action":"shell.exec","title":"x","payload":{"kind":"log","kind":"command","content":"` + canary + `"}}`, nil, 400, "duplicate_key"},
			{"duplicate deep in risk", `{"action":"shell.exec","title":"x","risk":{"a":[1,{"k":"` + canary + `","k":2}]}}`, nil, 400, "duplicate_key"},
			{"duplicate payload", `{"action":"shell.exec","title":"x","payload":{"kind":"log","content":"a"},"payload":null}`, nil, 400, "duplicate_key"},
			// Zero is not "the default": leaving the timeout out (or null) is.
			{"timeout 0 string", body(set("timeout", "0")), nil, 400, "invalid_timeout"},
			{"timeout 0s", body(set("timeout", "0s")), nil, 400, "invalid_timeout"},
			{"timeout 0 number", body(set("timeout", 0)), nil, 400, "invalid_timeout"},
			{"timeout 0.0", `{"action":"shell.exec","title":"x","timeout":0.0}`, nil, 400, "invalid_timeout"},
			{"timeout rounds to 0", `{"action":"shell.exec","title":"x","timeout":1e-12}`, nil, 400, "invalid_timeout"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := agentRaw(t, in).do("POST", "/v1/handoffs", tc.body, tc.hdr...)
				e := r.wantErr(t, tc.status, tc.code)
				if strings.Contains(string(r.Body), canary) || strings.Contains(e.Message, "echo ") {
					t.Errorf("error quotes the request: %s", r.Body)
				}
			})
		}
		// Parallel subtests run after this function returns; the cleanup sees them all done. Only the
		// accepted creates below may have stored anything.
		t.Cleanup(func() {
			hs := agentRaw(t, in).do("GET", "/v1/handoffs?limit=500", nil).list(t)
			for _, h := range hs {
				if h.Status != "cancelled" {
					t.Errorf("a refused create stored %+v", h)
				}
			}
		})

		accepted := []struct {
			name string
			mod  func(map[string]any)
			ttl  time.Duration
		}{
			{"title 200 chars", set("title", strings.Repeat("x", 200)), time.Hour},
			{"title 200 runes", set("title", strings.Repeat("é", 200)), time.Hour},
			{"title padded", set("title", "  padded  "), time.Hour},
			{"summary newlines", set("summary", "line one\nline two\ttabbed"), time.Hour},
			{"payload at limit", set("payload", map[string]any{"kind": "diff", "content": strings.Repeat("d", limit)}), time.Hour},
			{"timeout 10m", set("timeout", "10m"), 10 * time.Minute},
			{"timeout 600", set("timeout", 600), 10 * time.Minute},
			{"timeout 10s minimum", set("timeout", "10s"), 10 * time.Second},
			{"timeout at org max", set("timeout", "24h"), 24 * time.Hour},
			{"timeout null", set("timeout", nil), time.Hour},
			{"timeout absent", del("timeout"), time.Hour},
			{"callback http", set("callback_url", "http://agent.example:1/cb?x=1"), time.Hour},
		}
		for _, tc := range accepted {
			r := agentRaw(t, in).do("POST", "/v1/handoffs", body(tc.mod))
			h := r.handoff(t, http.StatusCreated)
			if got := h.ExpiresAt.Sub(h.CreatedAt); got != tc.ttl {
				t.Errorf("%s: lifetime %v, want %v", tc.name, got, tc.ttl)
			}
			if tc.name == "title padded" && h.Title != "padded" {
				t.Errorf("title not trimmed: %q", h.Title)
			}
			// Cancelled, so the cleanup check above can tell them from anything a refusal stored.
			if _, err := in.Agent(t).Cancel(context.Background(), h.ID, ""); err != nil {
				t.Fatalf("%s: cancel: %v", tc.name, err)
			}
		}
	})
}

// TestIdempotency covers replays, key reuse with another request, a burst on one key, and keys being
// per device.
func TestIdempotency(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		agent := agentRaw(t, in)
		body := `{"action":"deploy.app","title":"Ship v2","labels":{"env":"staging"},"timeout":"30m"}`
		// Same meaning, different spelling: key order and spacing do not matter.
		respelled := `{ "timeout": 1800, "labels": {"env": "staging"}, "title": "Ship v2", "action": "deploy.app" }`

		first := agent.do("POST", "/v1/handoffs", body, "Idempotency-Key", "key-1")
		h1 := first.handoff(t, http.StatusCreated)
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("first create marked replayed")
		}
		for _, b := range []string{body, respelled} {
			again := agent.do("POST", "/v1/handoffs", b, "Idempotency-Key", "key-1")
			h2 := again.handoff(t, http.StatusCreated)
			if h2.ID != h1.ID || !h2.CreatedAt.Equal(h1.CreatedAt) {
				t.Fatalf("replay gave %s, want %s", h2.ID, h1.ID)
			}
			if got := again.Header.Get("Idempotent-Replayed"); got != "true" {
				t.Fatalf("Idempotent-Replayed = %q", got)
			}
		}
		other := agent.do("POST", "/v1/handoffs", `{"action":"deploy.app","title":"Ship v3"}`, "Idempotency-Key", "key-1")
		other.wantErr(t, http.StatusConflict, "idempotency_key_reused")

		// The client reports the replay too.
		ag := in.Agent(t)
		c1, replayed, err := ag.Create(ctxT(t), basicRequest("client replay"), "key-2")
		if err != nil || replayed {
			t.Fatalf("client create: %v replayed=%v", err, replayed)
		}
		c2, replayed, err := ag.Create(ctxT(t), basicRequest("client replay"), "key-2")
		if err != nil || !replayed || c2.ID != c1.ID {
			t.Fatalf("client replay: %v replayed=%v %s/%s", err, replayed, c2.ID, c1.ID)
		}

		// A replay after the handoff was decided returns its current state.
		member := person(t, in, in.Member)
		if _, err := member.Decide(ctxT(t), c1.ID, "deny", ""); err != nil {
			t.Fatal(err)
		}
		c3, replayed, err := ag.Create(ctxT(t), basicRequest("client replay"), "key-2")
		if err != nil || !replayed || c3.ID != c1.ID || c3.Status != "denied" {
			t.Fatalf("replay after decision: %v replayed=%v %+v", err, replayed, c3)
		}

		// Ten at once with one key: one handoff.
		const n = 10
		ids := make([]string, n)
		statuses := make([]int, n)
		var wg sync.WaitGroup
		burst := `{"action":"db.migrate","title":"Burst"}`
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := agentRaw(t, in).do("POST", "/v1/handoffs", burst, "Idempotency-Key", "burst-key")
				statuses[i] = r.Status
				var h client.Handoff
				_ = json.Unmarshal(r.Body, &h)
				ids[i] = h.ID
			}()
		}
		wg.Wait()
		for i := range n {
			if statuses[i] != http.StatusCreated || ids[i] == "" || ids[i] != ids[0] {
				t.Fatalf("burst: statuses %v ids %v", statuses, ids)
			}
		}
		count := 0
		for _, h := range agent.do("GET", "/v1/handoffs?limit=500", nil).list(t) {
			if h.Title == "Burst" {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("burst stored %d handoffs", count)
		}

		// Keys belong to a device: another device may use the same key for its own handoff.
		dev2 := secondDevice(t, in, in.OrgID)
		r := bearer(t, in.URL, dev2.Token).do("POST", "/v1/handoffs", body, "Idempotency-Key", "key-1")
		h3 := r.handoff(t, http.StatusCreated)
		if h3.ID == h1.ID || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("another device's key replayed the first device's handoff")
		}
		// And a different request from it with that key is its own business, not a conflict.
		bearer(t, in.URL, dev2.Token).do("POST", "/v1/handoffs", body, "Idempotency-Key", "key-1").handoff(t, http.StatusCreated)
	})
}

// TestConfiguredTimeouts: handoffs.default_timeout applies to handoffs that ask for none, and
// handoffs.max_timeout ("Longest timeout a handoff may ask for", configs/ony.example.yaml) bounds the
// ones that ask.
func TestConfiguredTimeouts(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, func(c *config.Config) {
			c.Handoffs.DefaultTimeout = config.Duration(30 * time.Minute)
			c.Handoffs.MaxTimeout = config.Duration(time.Hour)
		})
		agent := agentRaw(t, in)
		for _, tc := range []struct {
			timeout any
			want    time.Duration
		}{{nil, 30 * time.Minute}, {"1h", time.Hour}, {3600, time.Hour}} {
			body := map[string]any{"action": "deploy.app", "title": "timeouts"}
			if tc.timeout != nil {
				body["timeout"] = tc.timeout
			}
			h := agent.do("POST", "/v1/handoffs", body).handoff(t, http.StatusCreated)
			if got := h.ExpiresAt.Sub(h.CreatedAt); got != tc.want {
				t.Errorf("timeout %v: lifetime %v, want %v", tc.timeout, got, tc.want)
			}
		}
		for _, timeout := range []any{"2h", 7200, "24h"} {
			r := agent.do("POST", "/v1/handoffs", map[string]any{"action": "deploy.app", "title": "too long", "timeout": timeout})
			if r.Status == http.StatusCreated {
				t.Errorf("timeout %v over handoffs.max_timeout (1h) was accepted: %s", timeout, r.Body)
				continue
			}
			r.wantErr(t, http.StatusBadRequest, "timeout_too_long")
		}
	})
}
