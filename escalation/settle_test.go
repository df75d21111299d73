package escalation_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/store"
)

// Settles of one organization that queue while a batch of its settles is written go together in the
// next transaction; each caller returns once its row is written, and a settle that fails does not
// fail the others of its batch.
func TestSettleBatches(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOpts{dialect: dialect, ladders: []string{`
name: quiet
default: true
steps:
  - channels: [webhook]
    targets: [webhook:bridge]
    wait: 1h
end: wait
`}})
			hd := h.create(handoff.CreateRequest{Action: "deploy"})
			const n = 20
			args := make([]escalation.SendArgs, n)
			now := h.clock.now()
			must(t, h.st.InOrg(ctx, h.orgID, func(tx store.OrgTx) error {
				for i := range args {
					args[i] = escalation.SendArgs{OrgID: h.orgID, HandoffID: hd.ID, Climb: 0, Step: 0, Channel: "webhook", Target: fmt.Sprintf("webhook:b%d", i)}
					if _, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: hd.ID, Key: fmt.Sprintf("0.0.webhook.webhook:b%d.0", i),
						Channel: "webhook", Target: args[i].Target, CreatedAt: now}); err != nil {
						return err
					}
				}
				return nil
			}))
			// The first batches' transactions (one settle each) wait until every other settle has
			// been called, so those queue behind them.
			k := escalation.MaxSettleBatches
			var txs atomic.Int32
			release := make(chan struct{})
			h.st.beforeTx = func() {
				if txs.Add(1) <= int32(k) {
					<-release
				}
			}
			sending := []store.SendState{store.SendSending}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					errs[i] = escalation.SettleOnly(ctx, h.eng, args[i], sending, store.SendUpdate{State: store.SendSent, Provider: "builtin", At: now})
				})
				for i < k && txs.Load() <= int32(i) {
					time.Sleep(time.Millisecond)
				}
			}
			for end := time.Now().Add(10 * time.Second); escalation.QueuedSettles(h.eng, h.orgID) < n-k && time.Now().Before(end); {
				time.Sleep(time.Millisecond)
			}
			close(release)
			wg.Wait()
			h.st.beforeTx = nil
			for i, err := range errs {
				if err != nil {
					t.Errorf("settle %d: %v", i, err)
				}
			}
			if got := txs.Load(); got != int32(k)+1 {
				t.Errorf("%d transactions for %d settles; want %d: %d alone, and one for those that queued behind them", got, n, k+1, k)
			}
			// A settle the store refuses fails alone.
			if err := escalation.SettleOnly(ctx, h.eng, args[0], sending, store.SendUpdate{State: "bogus", At: now}); err == nil {
				t.Error("a settle with an unknown state reported no error")
			}
			sent := 0
			for _, s := range h.sends(hd.ID) {
				if s.State == store.SendSent && s.Provider == "builtin" && s.Target != "webhook:bridge" { // not the rung's own send
					sent++
				}
			}
			if sent != n {
				t.Errorf("%d sends recorded as sent; want %d", sent, n)
			}
		})
	}
}
