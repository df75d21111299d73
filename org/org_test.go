package org_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

var ctx = context.Background()

func TestMain(m *testing.M) {
	auth.UseTestWorkFactor()
	os.Exit(m.Run())
}

func newService(t *testing.T, dialect string) org.Service {
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "ony-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return org.Service{Store: testdb.Open(t, dialect), Audit: audit.New(keys, "ony-test", nil, nil), Kinds: app.BuiltinKinds()}
}

func events(t *testing.T, sv org.Service, orgID string) []string {
	t.Helper()
	var out []string
	if _, err := sv.Audit.Sequence(ctx, sv.Store, orgID); err != nil {
		t.Fatal(err)
	}
	err := sv.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		ls, err := tx.AuditLeaves(ctx, 0, 100)
		for _, l := range ls {
			e, err := audit.Decode(l.Data)
			if err != nil {
				return err
			}
			out = append(out, string(e.Type)+":"+e.Subject.Kind)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func code(err error) string {
	if p, ok := problem.As(err); ok {
		return p.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestProvisioningIsAudited(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sv := newService(t, d)
			by := audit.Actor{Kind: "system", ID: "test"}
			o, err := sv.Create(ctx, by, org.NewOrg{Name: "Acme", AdminEmail: "Ana@Acme.test"})
			if err != nil {
				t.Fatal(err)
			}
			if o.AdminEmail != "ana@acme.test" || len(o.AdminPassword) < 12 {
				t.Fatalf("created %+v", o)
			}
			dev, err := sv.CreateDevice(ctx, by, o.OrgID, "ci")
			if err != nil || !strings.HasPrefix(dev.Token, "ony_dev_") {
				t.Fatalf("device %+v %v", dev, err)
			}
			if err := sv.RevokeDevice(ctx, by, o.OrgID, dev.DeviceID); err != nil {
				t.Fatal(err)
			}
			if err := sv.RevokeDevice(ctx, by, o.OrgID, dev.DeviceID); code(err) != "device_not_found" {
				t.Fatalf("second revoke: %v", err)
			}
			want := "org.created:org member.invited:user device.created:device device.revoked:device"
			if got := strings.Join(events(t, sv, o.OrgID), " "); got != want {
				t.Fatalf("audit events:\n got %s\nwant %s", got, want)
			}
			if _, err := sv.Create(ctx, by, org.NewOrg{Name: "Other", AdminEmail: "ana@acme.test"}); code(err) != "email_taken" {
				t.Fatalf("duplicate email: %v", err)
			}
			if _, err := sv.CreateDevice(ctx, by, "00000000-0000-4000-8000-000000000001", "x"); code(err) != "org_not_found" {
				t.Fatalf("device for unknown org: %v", err)
			}
		})
	}
}

// TestEraseOrg erases an organization once: what is not (or no longer) an organization, the instance
// log included, is not found, and the instance log keeps a tombstone.
func TestEraseOrg(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sv := newService(t, d)
			by := audit.Actor{Kind: "system", ID: "test"}
			o, err := sv.Create(ctx, by, org.NewOrg{Name: "Acme", AdminEmail: "ana@acme.test"})
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"00000000-0000-4000-8000-000000000001", store.InstanceLogID} {
				if err := sv.EraseOrg(ctx, by, id); code(err) != "org_not_found" {
					t.Errorf("erase %s: %v, want org_not_found", id, err)
				}
			}
			if err := sv.EraseOrg(ctx, by, o.OrgID); err != nil {
				t.Fatal(err)
			}
			if err := sv.EraseOrg(ctx, by, o.OrgID); code(err) != "org_not_found" {
				t.Errorf("a second erase: %v, want org_not_found", err)
			}
			if got := strings.Join(events(t, sv, store.InstanceLogID), " "); got != "org.erased:org" {
				t.Errorf("instance log: %s, want one tombstone", got)
			}
		})
	}
}

// TestBootstrapRace starts several "replicas" bootstrapping one empty database at once: exactly one
// organization results, with its admin, and every caller succeeds.
func TestBootstrapRace(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			sv := newService(t, d)
			var wg sync.WaitGroup
			created := make(chan string, 4)
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					o, _, err := sv.Bootstrap(ctx, "Default", "admin@localhost")
					if err != nil {
						t.Errorf("bootstrap: %v", err)
					}
					if o != nil {
						created <- o.OrgID
					}
				}()
			}
			wg.Wait()
			close(created)
			var n int
			for range created {
				n++
			}
			var orgs int
			if err := sv.Store.InSystem(ctx, func(tx store.SystemTx) (err error) { orgs, err = tx.CountOrgs(ctx); return err }); err != nil {
				t.Fatal(err)
			}
			if n != 1 || orgs != 1 {
				t.Fatalf("%d bootstraps reported creating, %d orgs exist; want 1 and 1", n, orgs)
			}
		})
	}
}
