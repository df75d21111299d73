package escalation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestDeactivatedMemberIsNotNotified (issue 17): a deactivated member on call receives nothing from the
// rungs that reach their colleague; reactivated, the next handoff reaches them again.
func TestDeactivatedMemberIsNotNotified(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{ladders: []string{threeRungs}, dialect: d})
			h.person("ana", oncall("U1", "+15550000001"))
			bo := h.person("bo", oncall("U2", "+15550000002"))
			setActive := func(on bool) {
				bo.Active = on
				must(t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, bo) }))
			}
			setActive(false)
			first := h.create(handoff.CreateRequest{Action: "deploy"})
			h.advance(6 * time.Minute) // the console/Slack rung, then the SMS rung
			var ana, boSent int
			for _, l := range h.log() {
				switch {
				case strings.HasSuffix(l, " ana"):
					ana++
				case strings.HasSuffix(l, " bo"):
					boSent++
				}
			}
			if ana < 3 || boSent != 0 {
				t.Fatalf("notifications while Bo is deactivated: %q", h.log())
			}
			for _, s := range h.sends(first.ID) {
				if s.Target == bo.ID && s.State != store.SendSkipped {
					t.Errorf("a send to deactivated Bo: %+v", s)
				}
			}
			setActive(true)
			seen := len(h.log())
			h.create(handoff.CreateRequest{Action: "deploy"})
			h.advance(time.Second)
			reached := false
			for _, l := range h.log()[seen:] {
				reached = reached || strings.HasSuffix(l, " bo")
			}
			if !reached {
				t.Errorf("reactivated Bo was not notified: %q", h.log()[seen:])
			}
		})
	}
}
