package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
)

// TestDecisionTokensSurviveChat: tokens that exist when 0009 runs (SQLite rebuilds the table) keep
// their person, read as person tokens with no target, still work once, and still go with their
// person; the new constraint holds (issue 14).
func TestDecisionTokensSurviveChat(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			exec, closeDB, open := migratedBefore(t, d, "chat")
			org, ana, dev, h := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
			created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
			if d == "postgres" {
				exec(`SELECT set_config('ony.org_id', ?, false)`, org)
			}
			exec(`INSERT INTO orgs (id, name, max_timeout_seconds, created_at) VALUES (?, 'acme', 3600, ?)`, org, created)
			exec(`INSERT INTO users (org_id, id, email, name, password_hash, role, created_at) VALUES (?, ?, 'ana@example.com', 'Ana', 'x', 'member', ?)`,
				org, ana, created)
			exec(`INSERT INTO devices (org_id, id, name, token_hash, callback_key, created_at) VALUES (?, ?, 'agent', ?, ?, ?)`,
				org, dev, []byte(uuid.NewString()), []byte("k"), created)
			exec(`INSERT INTO handoffs (org_id, id, device_id, action, title, summary, risk, risk_reasons, options, labels, payload_kind,
				payload_size, callback_url, status, created_at, expires_at)
				VALUES (?, ?, ?, 'deploy', 't', 's', 'low', '[]', '[{"id":"approve","label":"Approve","approves":true}]', '{}', '', 0, '', 'pending', ?, ?)`,
				org, h, dev, created, created.Add(time.Hour))
			hashes := [][]byte{[]byte(uuid.NewString()), []byte(uuid.NewString())}
			for _, hash := range hashes {
				exec(`INSERT INTO decision_tokens (org_id, hash, handoff_id, user_id, channel, created_at, expires_at) VALUES (?, ?, ?, ?, 'sms', ?, ?)`,
					org, hash, h, ana, created, created.Add(time.Hour))
			}
			closeDB()

			s := open()
			if err := s.InSystem(ctx, func(tx store.SystemTx) error {
				got, err := tx.DecisionTokenByHash(ctx, hashes[0])
				if err != nil || got.UserID != ana || got.Target != "" || got.HandoffID != h || got.Channel != "sms" || got.UsedAt != nil {
					t.Errorf("token after migration: %+v, %v", got, err)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.InOrg(ctx, org, func(tx store.OrgTx) error {
				ok, err := tx.UseDecisionToken(ctx, hashes[0], created.Add(time.Minute))
				if err != nil || !ok {
					t.Errorf("use after migration: %v, %v", ok, err)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// The person's other token goes with them.
			if err := s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, org) }); err != nil {
				t.Fatal(err)
			}
			if err := s.InSystem(ctx, func(tx store.SystemTx) error {
				_, err := tx.DecisionTokenByHash(ctx, hashes[1])
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("token of an erased org: %v", err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
