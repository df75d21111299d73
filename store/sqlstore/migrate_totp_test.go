package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestSessionsGetPublicIDs: sessions that exist when 0007 runs get distinct public ids and count as
// last seen when they were created, so lists and revocation work for them (issue 13).
func TestSessionsGetPublicIDs(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exec, closeDB, open := migratedBefore(t, d, "totp")
			org, ana := uuid.NewString(), uuid.NewString()
			created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			if d == "postgres" {
				exec(`SELECT set_config('ony.org_id', ?, false)`, org)
			}
			exec(`INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES (?, 'acme', 3600, ?)`, org, created)
			exec(`INSERT INTO users (org_id, id, email, name, password_hash, role, created_at) VALUES (?, ?, 'ana@example.com', 'Ana', 'x', 'member', ?)`,
				org, ana, created)
			for i := 0; i < 2; i++ {
				exec(`INSERT INTO sessions (org_id, id_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
					org, []byte(uuid.NewString()), ana, created.Add(time.Duration(i)*time.Minute), created.Add(time.Hour))
			}
			closeDB()

			s := open()
			var ss []store.Session
			if err := s.InOrg(ctx, org, func(tx store.OrgTx) (err error) { ss, err = tx.UserSessions(ctx, ana); return err }); err != nil {
				t.Fatal(err)
			}
			if len(ss) != 2 || ss[0].PublicID == "" || ss[1].PublicID == "" || ss[0].PublicID == ss[1].PublicID {
				t.Fatalf("sessions after migration: %+v", ss)
			}
			for _, x := range ss {
				if !x.LastSeenAt.Equal(x.CreatedAt) || x.UserAgent != "" {
					t.Fatalf("backfilled session %+v", x)
				}
			}
			if err := s.InOrg(ctx, org, func(tx store.OrgTx) error { return tx.DeleteUserSession(ctx, ana, ss[1].PublicID) }); err != nil {
				t.Fatal(err)
			}
		})
	}
}
