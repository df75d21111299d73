package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testhttp"
)

// TestMetricsListenerServesProfiles: the profiler answers on ONY_METRICS_LISTEN only, never on the
// public listener.
func TestMetricsListenerServesProfiles(t *testing.T) {
	t.Parallel()
	ops := freeAddr(t)
	srv := startServe(t, map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_METRICS_LISTEN": ops})
	srv.waitReady()
	defer srv.stop()
	hc := &http.Client{Transport: testhttp.Client.Transport, Timeout: 10 * time.Second}
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://" + ops + "/debug/pprof/cmdline"); code != http.StatusOK || !strings.Contains(body, "serve") {
		t.Fatalf("metrics listener /debug/pprof/cmdline: %d %q", code, body)
	}
	if code, body := get("http://" + ops + "/debug/pprof/heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("metrics listener heap profile: %d", code)
	}
	if code, _ := get(srv.URL + "/debug/pprof/cmdline"); code != http.StatusNotFound {
		t.Fatalf("public listener /debug/pprof/cmdline: %d, want 404", code)
	}
	mustContain(t, "stderr", srv.Stderr(), "metrics listening")
}
