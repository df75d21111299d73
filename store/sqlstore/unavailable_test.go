package sqlstore_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// TestUnavailable: a database that cannot be reached is store.ErrUnavailable, whichever way it went
// away — PostgreSQL behind a cut connection (pooled connections dropped, new ones refused), SQLite and
// PostgreSQL with their pool closed — while the errors of a reachable database (a conflict, the
// caller's own error) are not. After the connection comes back, the same store works again.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ops := map[string]func(s store.Store, f storetest.Fixture) error{
		"InOrg read": func(s store.Store, f storetest.Fixture) error {
			return s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { _, err := tx.HandoffByID(ctx, f.Handoff.ID); return err })
		},
		"InOrg write": func(s store.Store, f storetest.Fixture) error {
			return s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.SetHandoffGist(ctx, f.Handoff.ID, "gist") })
		},
		"InSystem": func(s store.Store, f storetest.Fixture) error {
			return s.InSystem(ctx, func(tx store.SystemTx) error { _, err := tx.CountOrgs(ctx); return err })
		},
	}
	reachable := func(t *testing.T, s store.Store, f storetest.Fixture) {
		t.Helper()
		for name, op := range ops {
			if err := op(s, f); err != nil {
				t.Errorf("%s on a reachable database: %v", name, err)
			}
		}
		conflict := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateOrg(ctx, f.Org) })
		if !errors.Is(conflict, store.ErrConflict) || errors.Is(conflict, store.ErrUnavailable) {
			t.Errorf("a duplicate org: %v, want a conflict and not unavailable", conflict)
		}
		own := errors.New("the caller's own")
		if err := s.InOrg(ctx, f.Org.ID, func(store.OrgTx) error { return own }); errors.Is(err, store.ErrUnavailable) {
			t.Errorf("the caller's error became %v", err)
		}
	}
	unreachable := func(t *testing.T, s store.Store, f storetest.Fixture) {
		t.Helper()
		for name, op := range ops {
			start := time.Now()
			err := op(s, f)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s on an unreachable database: %v, want store.ErrUnavailable", name, err)
			}
			t.Logf("%s: %s after %s", name, err, time.Since(start).Round(time.Millisecond))
		}
	}

	t.Run("postgres cut", func(t *testing.T) {
		t.Parallel()
		direct := testdb.PostgresURL(t)
		proxy := testdb.NewProxy(t, direct)
		s := testdb.OpenURL(t, proxy.URL(direct))
		f := storetest.NewFixture(t, s, "acme")
		reachable(t, s, f) // fills the pool with connections the cut will drop
		proxy.Cut()
		unreachable(t, s, f)
		proxy.Restore()
		reachable(t, s, f)
	})
	t.Run("postgres stalled", func(t *testing.T) {
		t.Parallel()
		direct := testdb.PostgresURL(t)
		proxy := testdb.NewProxy(t, direct)
		// A server that accepts and never answers: the connect timeout (here 1 s) ends each attempt.
		u, err := url.Parse(proxy.URL(direct))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("connect_timeout", "1")
		u.RawQuery = q.Encode()
		s := testdb.OpenURL(t, u.String())
		f := storetest.NewFixture(t, s, "acme")
		reachable(t, s, f)
		proxy.Stall()
		unreachable(t, s, f)
		proxy.Restore()
		reachable(t, s, f)
	})
	for _, d := range testdb.Dialects {
		t.Run(d+" closed", func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			f := storetest.NewFixture(t, s, "acme")
			reachable(t, s, f)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			unreachable(t, s, f)
		})
	}
}
