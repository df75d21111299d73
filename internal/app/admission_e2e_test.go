package app_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
)

// Rungs that fell due while no replica ran start late on the next one, and creates there go through
// the admission gate one at a time until the queue catches up: the whole path from River's job
// through the engine to the create's handler.
func TestCreatesHeldWhileRungsLate(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ladders := t.TempDir()
			if err := os.WriteFile(filepath.Join(ladders, "two.yaml"), []byte(`
name: two
default: true
steps:
  - channels: [console]
    targets: [role:member]
    wait: 1s
  - channels: [console]
    targets: [role:member]
    wait: 1h
end: wait
`), 0o600); err != nil {
				t.Fatal(err)
			}
			configure := func(c *config.Config) {
				c.Escalation.LaddersDir = ladders
				c.Metrics.Listen = "127.0.0.1:0" // metrics are recorded only with the operator's listener on
			}
			first := testserver.Start(t, testserver.Options{Dialect: dialect, Configure: configure}).Seed(t)
			ctx := context.Background()
			if _, _, err := first.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy", Title: "Deploy"}, ""); err != nil {
				t.Fatal(err)
			}
			first.Stop(t)
			time.Sleep(1500 * time.Millisecond) // the second rung falls due with no replica running

			// The hook runs in the step job's worker, after the gate has seen it start late; a late
			// step holds the gate narrow while it runs, so the hook keeps the worker until the test
			// has made its create.
			late, resume := make(chan time.Duration, 1), make(chan struct{})
			observe := func(kind string, d time.Duration) {
				if kind != "escalation.step" {
					return
				}
				select {
				case late <- d:
					<-resume
				default:
				}
			}
			second := testserver.Start(t, testserver.Options{Dialect: dialect, Configure: configure,
				DataDir: first.DataDir, DatabaseURL: first.DatabaseURL, ObserveLateness: observe})
			second.OrgID, second.DeviceToken = first.OrgID, first.DeviceToken
			held := func() float64 {
				rec := httptest.NewRecorder()
				second.App.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				return sample(rec.Body.String(), "ony_handoff_creates_held_total")
			}
			if n := held(); n != 0 {
				t.Fatalf("%v creates held before any", n)
			}
			select {
			case d := <-late:
				if d < 500*time.Millisecond {
					t.Fatalf("the second rung started %v late, want at least 500ms (it fell due while no replica ran)", d)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the second rung did not start within 30s")
			}
			_, _, err := second.Agent(t).Create(ctx, client.CreateRequest{Action: "deploy", Title: "While late"}, "")
			close(resume)
			if err != nil {
				t.Fatalf("create while rungs run late: %v; want admitted, one at a time", err)
			}
			if n := held(); n != 1 {
				t.Fatalf("%v creates held, want 1: the create met the gate narrowed", n)
			}
		})
	}
}
