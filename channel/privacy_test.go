package channel_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ony-ai/ony/channel"
)

// TestNotificationCarriesNoPayload: what every channel (chat, SMS, calls, webhooks) receives about a
// handoff is a Notification, and it has no field for the payload, the title, the summary or the raw
// command — only the action, the risk, its reason codes, the redacted gist and the redacted option
// labels. A new field fails this test on purpose: adding one means checking it against
// docs/privacy.md ("Those channels carry only the action, its risk, and a redacted gist").
func TestNotificationCarriesNoPayload(t *testing.T) {
	t.Parallel()
	allowed := []string{"Key", "OrgID", "HandoffID", "Action", "Risk", "Gist", "Agent", "Reasons", "Options",
		"ConsoleURL", "ExpiresAt", "Ladder", "Climb", "Step", "StepName", "Attempt", "Recipient", "Token", "StepUp"}
	typ := reflect.TypeFor[channel.Notification]()
	var got []string
	for f := range typ.Fields() {
		got = append(got, f.Name)
		if !slices.Contains(allowed, f.Name) {
			t.Errorf("channel.Notification has a new field %s: check it against docs/privacy.md, then list it here", f.Name)
		}
	}
	for _, name := range allowed {
		if !slices.Contains(got, name) {
			t.Errorf("channel.Notification lost %s: update this list", name)
		}
	}
}
