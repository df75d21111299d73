package ask

import (
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
)

// TestDescribe checks the one line `ony request --wait` prints: durations without zero units, the
// decider by name or else by kind and id, and no control character from a name reaching a terminal.
func TestDescribe(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    client.Handoff
		want string
	}{
		{client.Handoff{Status: "expired", CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
			Decision: &client.Decision{Channel: "system", Outcome: "expired"}}, "expired (no human decision within 15m)"},
		{client.Handoff{Status: "expired", CreatedAt: created, ExpiresAt: created.Add(90 * time.Second)}, "expired (no human decision within 1m30s)"},
		{client.Handoff{Status: "denied", Decision: &client.Decision{Option: "deny", By: &client.Decider{Kind: "user", Name: "Ana\x1b[31m"},
			Channel: "slack", Comment: "no\nway \x1b[2J"}}, `denied by Ana[31m via slack: "no\nway \x1b[2J"`},
		{client.Handoff{Status: "approved", Decision: &client.Decision{Option: "approve", By: &client.Decider{Kind: "user", ID: "u1"}, Channel: "api"}},
			"approved by user u1 via api"},
	} {
		if got := Describe(&tc.h); got != tc.want {
			t.Errorf("Describe(%s) = %q, want %q", tc.h.Status, got, tc.want)
		}
	}
}
