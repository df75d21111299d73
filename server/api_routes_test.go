package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestRoutes covers unknown routes, wrong methods, health checks and the headers every answer has.
func TestRoutes(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		h := mustCreate(t, in.Agent(t), basicRequest("routes"))
		agent := agentRaw(t, in)

		// "/" and "/console" belong to the console now (its own tests cover them). (console)
		for _, path := range []string{"/v1", "/v1/nope", "/v1/handoffs/" + h.ID + "/nope", "/v2/handoffs", "/v1/handoffs/" + h.ID + "/wait/x"} {
			for _, c := range []*caller{anon(t, in.URL), agent} {
				c.do("GET", path, nil).wantErr(t, http.StatusNotFound, "not_found")
			}
		}

		for _, tc := range []struct {
			method, path string
			allow        []string
		}{
			{"PUT", "/v1/handoffs", []string{"GET", "POST"}},
			{"DELETE", "/v1/handoffs", []string{"GET", "POST"}},
			{"DELETE", "/v1/handoffs/" + h.ID, []string{"GET"}},
			{"PATCH", "/v1/handoffs/" + h.ID, []string{"GET"}},
			{"GET", "/v1/handoffs/" + h.ID + "/decide", []string{"POST"}},
			{"GET", "/v1/handoffs/" + h.ID + "/cancel", []string{"POST"}},
			{"POST", "/v1/handoffs/" + h.ID + "/wait", []string{"GET"}},
			{"GET", "/v1/auth/login", []string{"POST"}},
			{"GET", "/v1/auth/logout", []string{"POST"}},
			{"POST", "/v1/auth/me", []string{"GET"}},
			{"POST", "/healthz", []string{"GET"}},
			{"DELETE", "/readyz", []string{"GET"}},
		} {
			for _, c := range []*caller{anon(t, in.URL), agent} {
				r := c.do(tc.method, tc.path, nil)
				r.wantErr(t, http.StatusMethodNotAllowed, "method_not_allowed")
				allow := r.Header.Get("Allow")
				for _, m := range tc.allow {
					if !strings.Contains(allow, m) {
						t.Errorf("%s %s: Allow %q lacks %s", tc.method, tc.path, allow, m)
					}
				}
				if strings.Contains(allow, tc.method) {
					t.Errorf("%s %s: Allow %q includes the refused method", tc.method, tc.path, allow)
				}
			}
		}
		// A wrong method is refused before authentication: nothing was cancelled.
		if g := agent.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "pending" {
			t.Fatalf("status %q", g.Status)
		}

		health := anon(t, in.URL).do("GET", "/healthz", nil)
		if health.Status != http.StatusOK || health.object(t)["status"] != "ok" {
			t.Errorf("healthz: %d %s", health.Status, health.Body)
		}
		ready := anon(t, in.URL).do("GET", "/readyz", nil)
		if m := ready.object(t); ready.Status != http.StatusOK || m["database"] != "ok" || m["coordination"] != "ok" {
			t.Errorf("readyz: %d %s", ready.Status, ready.Body)
		}

		// Headers on success, on errors and on health checks alike.
		for _, r := range []resp{health, ready, agent.do("GET", "/v1/handoffs/"+h.ID, nil), anon(t, in.URL).do("GET", "/v1/nope", nil),
			anon(t, in.URL).do("GET", "/v1/handoffs", nil)} {
			for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
				if got := r.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q (status %d)", k, got, want, r.Status)
				}
			}
			if len(r.Header.Get("X-Request-Id")) == 0 {
				t.Errorf("no X-Request-Id (status %d)", r.Status)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q (status %d)", ct, r.Status)
			}
		}
		// A caller's request id is echoed; an oversized one is replaced.
		if got := agent.do("GET", "/v1/handoffs", nil, "X-Request-Id", "req-123").Header.Get("X-Request-Id"); got != "req-123" {
			t.Errorf("X-Request-Id echo = %q", got)
		}
		long := strings.Repeat("r", 65)
		if got := agent.do("GET", "/v1/handoffs", nil, "X-Request-Id", long).Header.Get("X-Request-Id"); got == long || got == "" {
			t.Errorf("oversized X-Request-Id kept: %q", got)
		}
	})
}
