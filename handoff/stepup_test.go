package handoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth/keyring"
	"github.com/ony-ai/ony/coord"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/risk"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// fakeStepUp requires step-up for high and critical and accepts "123456" once.
type fakeStepUp struct{ used bool }

func (f *fakeStepUp) StepUpRequired(_ context.Context, _, risk string) (bool, error) {
	return risk == "high" || risk == "critical", nil
}

func (f *fakeStepUp) Verify(_ context.Context, _, _, code string) error {
	if code != "123456" || f.used {
		return problem.New(problem.Unauthorized, "invalid_totp", "wrong")
	}
	f.used = true
	return nil
}

func TestDecideStepUp(t *testing.T) {
	t.Parallel()
	s := testdb.Open(t, "sqlite")
	kr, err := keyring.LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(keys, "ony-test", func(r string) bool { return risk.KnownReason(risk.Reason(r)) }, nil)
	svc := handoff.NewService(handoff.Deps{Store: s, Audit: log, Risk: risk.Default(), Keyring: kr, Coord: coord.NewMemory(nil),
		Logger: testdb.Discard, StepUp: &fakeStepUp{}}, handoff.Config{DefaultTimeout: time.Hour})
	f := storetest.NewFixture(t, s, "acme") // its handoff is high risk, options approve and deny
	member := handoff.Actor{OrgID: f.Org.ID, Kind: store.ActorUser, ID: f.User.ID, Name: "Ana", Role: store.RoleMember}
	ctx := context.Background()
	insert := func(r string) string {
		h := storetest.NewHandoff(f.Org.ID, f.Device.ID)
		h.Risk = r
		if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, h) }); err != nil {
			t.Fatal(err)
		}
		return h.ID
	}
	want := func(err error, c string, kind problem.Kind) {
		t.Helper()
		p, ok := problem.As(err)
		if !ok || p.Code != c || p.Kind != kind {
			t.Fatalf("want %s (%d), got %v", c, kind, err)
		}
	}
	ctxd := context.Background()
	_, err = svc.Decide(ctxd, member, f.Handoff.ID, "approve", "", "api")
	want(err, "stepup_required", problem.Forbidden)
	_, err = svc.DecideStepUp(ctxd, member, f.Handoff.ID, "approve", "", "api", "000000")
	want(err, "invalid_totp", problem.Forbidden)
	h, err := svc.DecideStepUp(ctxd, member, f.Handoff.ID, "approve", "", "api", "123456")
	if err != nil || h.Status != store.StatusApproved {
		t.Fatalf("approve with code: %v %v", h.Status, err)
	}
	// Denials and low-risk approvals need no code; unknown handoffs answer as before.
	if h, err := svc.Decide(ctxd, member, insert("critical"), "deny", "", "api"); err != nil || h.Status != store.StatusDenied {
		t.Fatalf("deny: %v %v", h.Status, err)
	}
	if h, err := svc.Decide(ctxd, member, insert("low"), "approve", "", "api"); err != nil || h.Status != store.StatusApproved {
		t.Fatalf("low approve: %v %v", h.Status, err)
	}
	_, err = svc.Decide(ctxd, member, "01990000-0000-7000-8000-000000000000", "approve", "", "api")
	want(err, "handoff_not_found", problem.NotFound)
	// A decided handoff answers already_final, not a step-up demand.
	_, err = svc.Decide(ctxd, member, f.Handoff.ID, "approve", "", "api")
	want(err, "already_final", problem.Conflict)
}
