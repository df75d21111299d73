package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

// TestRetentionCLI: `ony retention run --dry-run` says per organization what the sweep would scrub and
// changes nothing; `ony retention run` scrubs it (the instance default window from the environment
// here) and says so; a second run finds nothing.
func TestRetentionCLI(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			vars := map[string]string{"ONY_DATA_DIR": dir, "ONY_RETENTION_PAYLOAD_DAYS": "7"}
			var s *sqlstore.Store
			if d == "postgres" {
				u := testdb.PostgresURL(t)
				vars["ONY_DATABASE_URL"] = u
				s = testdb.OpenURL(t, u)
			} else {
				var err error
				if s, err = sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName), testdb.Discard); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
			}
			if r := runOny(t, vars, "", "migrate"); r.code != 0 { // the audit signing key
				t.Fatalf("migrate: %s", r)
			}
			f := storetest.NewFixture(t, s, "acme") // its handoff is pending and new: kept
			old := storetest.NewHandoff(f.Org.ID, f.Device.ID)
			old.CreatedAt = time.Now().Add(-8 * 24 * time.Hour)
			err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				if err := tx.InsertHandoff(ctx, old); err != nil {
					return err
				}
				_, err := tx.FinishHandoff(ctx, old.ID, store.StatusExpired, store.Decision{ByKind: store.ActorSystem, ByID: "system",
					Channel: "system", DecidedAt: old.CreatedAt.Add(time.Hour)})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			sealed := func() (oldSealed, newSealed bool) {
				t.Helper()
				err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
					a, err1 := tx.HandoffByID(ctx, old.ID)
					b, err2 := tx.HandoffByID(ctx, f.Handoff.ID)
					oldSealed, newSealed = a.PayloadKept, b.PayloadKept
					if err1 == nil && (a.PayloadKind != "command" || a.PayloadSize != 3 || a.Status != store.StatusExpired) {
						err1 = fmt.Errorf("the old handoff lost more than its payload: %+v", a)
					}
					return errorsJoin(err1, err2)
				})
				if err != nil {
					t.Fatal(err)
				}
				return oldSealed, newSealed
			}

			r := runOny(t, vars, "", "retention", "run", "--dry-run")
			mustContain(t, "dry run", r.stdout, f.Org.ID+"  window 7 days  would scrub 1 payload(s)", "would scrub 1 payload(s) in 1 organization(s)")
			if r.code != 0 {
				t.Fatalf("dry run: %s", r)
			}
			if o, n := sealed(); !o || !n {
				t.Fatalf("the dry run scrubbed: old %v new %v", o, n)
			}
			r = runOny(t, vars, "", "retention", "run")
			mustContain(t, "run", r.stdout, f.Org.ID+"  window 7 days  scrubbed 1 payload(s)")
			if r.code != 0 {
				t.Fatalf("run: %s", r)
			}
			if o, n := sealed(); o || !n {
				t.Fatalf("after the run: old sealed %v (want false), new sealed %v (want true)", o, n)
			}
			r = runOny(t, vars, "", "retention", "run", "--json")
			mustContain(t, "second run", r.stdout, `{"org_id":"`+f.Org.ID+`","days":7,"scrubbed":0,"dry_run":false}`)
			// Off means keep: without a window nothing is looked at.
			delete(vars, "ONY_RETENTION_PAYLOAD_DAYS")
			r = runOny(t, vars, "", "retention", "run")
			mustContain(t, "off", r.stdout, f.Org.ID+"  keeps payloads")
			if r := runOny(t, vars, "", "retention"); r.code != 2 || !strings.Contains(r.stderr, "ony retention run") {
				t.Errorf("usage: %s", r)
			}
		})
	}
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
