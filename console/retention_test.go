package console_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
)

// TestScrubbedPayloadSaysRemoved: once the retention sweep has scrubbed a handoff's payload, its
// console page and its API view say the payload was removed (kind and size stay), instead of failing
// or pretending there never was one; the content is gone from both.
func TestScrubbedPayloadSaysRemoved(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := startEnvOn(t, d)
			ag := e.in.Agent(t)
			const canary = "echo SCRUB-CANARY-5e1d"
			h := create(t, ag, client.CreateRequest{Action: "shell.exec", Title: "clean up",
				Payload: &client.Payload{Kind: "command", Content: canary}})
			if _, err := ag.Cancel(ctx, h.ID, ""); err != nil {
				t.Fatal(err)
			}
			admin := e.as(t, "admin")
			if a := admin.get("/console/handoffs/" + h.ID); a.status != 200 || !strings.Contains(a.body, "SCRUB-CANARY-5e1d") ||
				strings.Contains(a.body, "removed by retention") {
				t.Fatalf("before the sweep: %d %s", a.status, a.body)
			}
			r := &handoff.Retention{Store: e.in.App.Store, Audit: e.in.App.Audit, DefaultDays: 1,
				Clock: func() time.Time { return time.Now().Add(49 * time.Hour) }}
			if res, err := r.SweepOrg(ctx, e.in.OrgID, false); err != nil || res.Scrubbed != 1 {
				t.Fatalf("sweep: %+v, %v", res, err)
			}
			a := admin.get("/console/handoffs/" + h.ID)
			if a.status != 200 || !strings.Contains(a.body, "Payload removed by retention") || !strings.Contains(a.body, "(command, 22 bytes)") ||
				strings.Contains(a.body, "SCRUB-CANARY") {
				t.Errorf("console page after the sweep: %d %s", a.status, a.body)
			}
			api := admin.get("/v1/handoffs/" + h.ID)
			if api.status != 200 || !strings.Contains(api.body, `"payload":{"kind":"command","bytes":22,"removed":true}`) ||
				strings.Contains(api.body, "SCRUB-CANARY") {
				t.Errorf("API view after the sweep: %d %s", api.status, api.body)
			}
		})
	}
}
