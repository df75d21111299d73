package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlstore"
	"github.com/ony-ai/ony/store/storetest"
)

// bigOrg is the shape issue 12 measured: one organization with 40 k pending handoffs (and as many
// sends, tokens and idempotency keys), a few smaller ones, and people with contacts in all of them.
type bigOrg struct {
	org, user, device, handoff string
	phone                      string
	token, deviceToken, sess   []byte
}

const (
	bigPending = 40000 / raceScale
	// Enough agents that their table spans pages: at 200 (5 pages) a token's lookup by its unique
	// index cost 8.30 and a scan of the table 9.61, and under load the planner once took the scan.
	devices = 1000
)

// populate fills s like bigOrg says, through the store for one row of each kind and Copy for the bulk.
func populate(t testing.TB, s *sqlstore.Store) bigOrg {
	t.Helper()
	ctx := context.Background()
	d := s.Dialect()
	small := func(name string) storetest.Fixture { return newFixture(t, s, name) }
	a := small("big")
	n := time.Now().UTC().Truncate(time.Microsecond)
	b := bigOrg{org: a.Org.ID, user: a.User.ID, device: a.Device.ID, handoff: a.Handoff.ID, phone: "+15550100000",
		token: []byte("token-open"), deviceToken: a.Device.TokenHash, sess: a.Session.IDHash}
	decided := storetest.NewHandoff(a.Org.ID, a.Device.ID)
	err := s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		_, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: a.Handoff.ID, Key: "k", Channel: "console", Target: a.User.ID,
			Provider: "twilio", Ref: "ref", State: store.SendSent, CreatedAt: n, UpdatedAt: n})
		if err != nil {
			return err
		}
		if _, err := tx.FinishHandoff(ctx, mustInsert(ctx, tx, decided), store.StatusApproved,
			store.Decision{OptionID: "approve", ByKind: store.ActorUser, ByID: a.User.ID, Channel: "api", DecidedAt: n}); err != nil {
			return err
		}
		return errors.Join(
			tx.SetContact(ctx, store.Contact{UserID: a.User.ID, Kind: "phone", Address: b.phone, VerifiedAt: &n, CreatedAt: n}),
			tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: b.token, HandoffID: a.Handoff.ID, UserID: a.User.ID,
				Channel: "sms", CreatedAt: n, ExpiresAt: n.Add(-time.Minute)}),
			tx.PutIdempotencyRecord(ctx, store.Idempotency{DeviceID: a.Device.ID, Key: "idem", RequestHash: []byte("h"),
				HandoffID: a.Handoff.ID, CreatedAt: n}))
	})
	if err != nil {
		t.Fatal(err)
	}
	org := []any{a.Org.ID}
	id := testdb.Suffix(d, "id", false)
	// The org's agents: handoffs spread over them, one in devices of every handoff.
	testdb.Copy(t, s, a.Org.ID, "devices", "r.org_id = ?", org, devices, map[string]string{"id": id, "token_hash": testdb.Suffix(d, "token_hash", true)})
	testdb.Copy(t, s, a.Org.ID, "sessions", "r.org_id = ?", org, 5000/raceScale, map[string]string{"id_hash": testdb.Suffix(d, "id_hash", true),
		"public_id": testdb.Suffix(d, "public_id", false)})
	testdb.Copy(t, s, a.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{a.Org.ID, a.Handoff.ID}, bigPending, map[string]string{"id": id,
		"device_id": "r.device_id || '-' || CAST(g.n % " + fmt.Sprint(devices) + " + 1 AS text)"})
	testdb.Copy(t, s, a.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{a.Org.ID, decided.ID}, 2000/raceScale, map[string]string{"id": id})
	hid := testdb.Suffix(d, "handoff_id", false)
	testdb.Copy(t, s, a.Org.ID, "escalation_sends", "r.org_id = ?", org, bigPending, map[string]string{"handoff_id": hid, "ref": testdb.Suffix(d, "ref", false)})
	// Most tokens are never used (someone else decided) and lie expired; a quarter were used.
	testdb.Copy(t, s, a.Org.ID, "decision_tokens", "r.org_id = ?", org, bigPending, map[string]string{"handoff_id": hid,
		"hash": testdb.Suffix(d, "hash", true), "used_at": "CASE WHEN g.n % 4 = 0 THEN r.created_at END"})
	testdb.Copy(t, s, a.Org.ID, "idempotency_keys", "r.org_id = ?", org, bigPending, map[string]string{"handoff_id": hid, "key": testdb.Suffix(d, "key", false)})
	people := func(f storetest.Fixture, count int) {
		testdb.Copy(t, s, f.Org.ID, "users", "r.org_id = ? AND r.id = ?", []any{f.Org.ID, f.User.ID}, count,
			map[string]string{"id": id, "email": testdb.Suffix(d, "email", false)})
		must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			return tx.SetContact(ctx, store.Contact{UserID: f.User.ID, Kind: "phone", Address: "+1555" + f.Org.ID[:8], CreatedAt: n})
		}))
		testdb.Copy(t, s, f.Org.ID, "user_contacts", "r.org_id = ? AND r.user_id = ?", []any{f.Org.ID, f.User.ID}, count,
			map[string]string{"user_id": testdb.Suffix(d, "user_id", false), "address": testdb.Suffix(d, "address", false)})
	}
	for i := range 4 {
		f := small(fmt.Sprint("small", i))
		testdb.Copy(t, s, f.Org.ID, "handoffs", "r.org_id = ? AND r.id = ?", []any{f.Org.ID, f.Handoff.ID}, 1000/raceScale, map[string]string{"id": id})
		people(f, 500/raceScale)
	}
	testdb.Copy(t, s, a.Org.ID, "users", "r.org_id = ? AND r.id = ?", []any{a.Org.ID, a.User.ID}, 2000/raceScale,
		map[string]string{"id": id, "email": testdb.Suffix(d, "email", false)})
	testdb.Copy(t, s, a.Org.ID, "user_contacts", "r.org_id = ? AND r.user_id = ?", []any{a.Org.ID, a.User.ID}, 2000/raceScale,
		map[string]string{"user_id": testdb.Suffix(d, "user_id", false), "address": testdb.Suffix(d, "address", false)})
	return b
}

func newFixture(t testing.TB, s store.Store, name string) storetest.Fixture {
	tt, ok := t.(*testing.T)
	if !ok { // a benchmark: NewFixture wants a *testing.T only for its helpers
		tt = &testing.T{}
	}
	return storetest.NewFixture(tt, s, name)
}

func mustInsert(ctx context.Context, tx store.OrgTx, h store.Handoff) string {
	if err := tx.InsertHandoff(ctx, h); err != nil {
		panic(err)
	}
	return h.ID
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// hotQuery is one query on a hot path, the arguments it runs with, the indexes (any of them, by name
// fragment) it must use, and whether it must read its rows in index order (a page of a long list).
type hotQuery struct {
	name    string
	system  bool
	args    func(b bigOrg, now time.Time) []any
	indexes []string
	ordered bool
	// stale: the plan must hold with the statistics of an empty database too (the decision path).
	stale bool
	// wholeOrg: it reads every row of the organization from the index alone, never the table's rows;
	// PostgreSQL may read the whole table instead (under the aggregate, if the query has one) when the
	// organization is most of it (as the big one here is).
	wholeOrg bool
}

var hotQueries = []hotQuery{
	{name: "HandoffByID", stale: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.handoff + "-17"} }, indexes: []string{"handoffs_pkey", "sqlite_autoindex_handoffs"}},
	{name: "FinishHandoff", stale: true, args: func(b bigOrg, now time.Time) []any {
		return []any{"approved", "approve", "user", b.user, "Ana", "api", "", now, b.org, b.handoff + "-17"}
	}, indexes: []string{"handoffs_pkey", "sqlite_autoindex_handoffs"}},
	{name: "ListHandoffs", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, 50} }, indexes: []string{"handoffs_org_created"}, ordered: true},
	{name: "ListHandoffsByStatus", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, "approved", 50} }, indexes: []string{"handoffs_org_status_created"}, ordered: true},
	// One device's handoffs are a small share of the org: PostgreSQL may fetch them through the device
	// index and sort those few (it did under -race, with an eighth of the rows), which is as cheap as
	// reading in index order; the index is what matters, so these two are not required to be ordered.
	{name: "ListHandoffsByDevice", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.device + "-7", 50} }, indexes: []string{"handoffs_org_device"}},
	{name: "ListHandoffsByDeviceStatus", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.device + "-7", "pending", 50} }, indexes: []string{"handoffs_org_device", "handoffs_org_status_created"}},
	// Nearly every handoff of the org is pending: walking the newest first and keeping the pending ones
	// is as good as walking the pending ones.
	{name: "Inbox", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.user, 50} }, indexes: []string{"handoffs_org_status_created", "handoffs_org_created"}, ordered: true},
	{name: "SendByKey", stale: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.handoff + "-17", "k"} }, indexes: []string{"escalation_sends_pkey", "sqlite_autoindex_escalation_sends"}},
	{name: "SetSendState", args: func(b bigOrg, now time.Time) []any {
		return []any{"delivered", "", "", "", now, b.org, b.handoff + "-17", "k"}
	}, indexes: []string{"escalation_sends_pkey", "sqlite_autoindex_escalation_sends"}},
	{name: "ListSends", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.handoff + "-17"} }, indexes: []string{"escalation_sends_pkey", "sqlite_autoindex_escalation_sends"}},
	{name: "UseDecisionToken", stale: true, args: func(b bigOrg, now time.Time) []any { return []any{now, b.org, b.token, now} }, indexes: []string{"decision_tokens_pkey", "sqlite_autoindex_decision_tokens"}},
	{name: "IdempotencyRecord", stale: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.device, "idem-5"} }, indexes: []string{"idempotency_keys_pkey", "sqlite_autoindex_idempotency_keys"}},
	{name: "UserByContact", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, "phone", b.phone} }, indexes: []string{"user_contacts_address", "user_contacts_kind_address"}},
	{name: "UserByID", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.user} }, indexes: []string{"users_pkey", "sqlite_autoindex_users"}},
	{name: "UserContacts", args: func(b bigOrg, _ time.Time) []any { return []any{b.org, b.user} }, indexes: []string{"user_contacts_pkey", "sqlite_autoindex_user_contacts"}},
	{name: "AuditHandoffStates", args: func(b bigOrg, _ time.Time) []any { return []any{b.org} }, indexes: []string{"handoffs_org_status_created"}, wholeOrg: true},
	{name: "DecisionTokenByHash", stale: true, system: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.token} }, indexes: []string{"decision_tokens_pkey", "sqlite_autoindex_decision_tokens"}},
	{name: "OpenDecisionTokensTo", system: true, args: func(b bigOrg, now time.Time) []any { return []any{"phone", b.phone, "sms", now} }, indexes: []string{"user_contacts_kind_address", "decision_tokens_open"}},
	{name: "SendByRef", system: true, args: func(b bigOrg, _ time.Time) []any { return []any{"twilio", "ref-7"} }, indexes: []string{"escalation_sends_ref"}},
	{name: "DeviceByTokenHash", system: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.deviceToken} }, indexes: []string{"devices_token_hash_key"}},
	{name: "SessionByTokenHash", system: true, args: func(b bigOrg, _ time.Time) []any { return []any{b.sess} }, indexes: []string{"sessions_pkey", "sqlite_autoindex_sessions"}},
	// Payload retention (issue 17): a sweep's batch and a dry run's count read the handoffs that still
	// carry a payload through the partial index, not the org's handoffs (the batch is then scrubbed by
	// key, ScrubPayloads).
	{name: "ScrubbablePayloads", args: func(b bigOrg, now time.Time) []any { return []any{b.org, now.Add(time.Hour), 500} }, indexes: []string{"handoffs_payload_retention"}},
	// The expiry sweep (issue 12) reads the due pending handoffs of every organization through the
	// partial index of pending ones, earliest first, not the table.
	{name: "DueHandoffs", system: true, args: func(_ bigOrg, now time.Time) []any { return []any{now, 500} }, indexes: []string{"handoffs_pending_expiry"}, ordered: true},
	{name: "CountScrubbablePayloads", args: func(b bigOrg, now time.Time) []any { return []any{b.org, now.Add(time.Hour)} }, indexes: []string{"handoffs_payload_retention"}},
}

// bigTables are the tables a hot query must never read whole.
var bigTables = []string{"handoffs", "escalation_sends", "decision_tokens", "idempotency_keys", "users", "user_contacts"}

// TestHotQueryPlans: with issue 12's data and the statistics the store keeps (Analyze, which runs
// after migrations and periodically), every hot query reads through the index meant for it, never a
// whole big table, and a list page reads in index order instead of sorting the org.
func TestHotQueryPlans(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := testdb.Open(t, d)
			b := populate(t, s)
			now := time.Now().UTC()
			// Every plan is asked for on one connection, which loads the schema before Analyze runs on
			// another (this one is held meanwhile): statistics must reach every connection, not only the
			// one that gathered them.
			c, err := s.DB().Conn(context.Background())
			must(t, err)
			defer c.Close()
			// Before the statistics catch up with the bulk insert (the periodic Analyze, PostgreSQL's
			// autovacuum), the decision path already reads by key.
			for _, q := range hotQueries {
				if !q.stale {
					continue
				}
				plan := explain(t, s, c, b, q, now, "stale")
				if msg := checkPlan(d, q, plan); msg != "" {
					t.Errorf("%s with stale statistics: %s\nplan:\n%s", q.name, msg, strings.Join(plan, "\n"))
				}
			}
			must(t, s.Analyze(context.Background()))
			for _, q := range hotQueries {
				plan := explain(t, s, c, b, q, now, "analyzed")
				if msg := checkPlan(d, q, plan); msg != "" {
					t.Errorf("%s: %s\nplan:\n%s", q.name, msg, strings.Join(plan, "\n"))
				}
			}
		})
	}
}

// explain returns the query's plan on c, one line per node: SQLite's EXPLAIN QUERY PLAN details, and
// for PostgreSQL "<Node Type> <Relation Name> <Index Name>" from EXPLAIN (FORMAT JSON), run in a
// transaction scoped as the store scopes it (row-level security adds its own conditions).
func explain(t *testing.T, s *sqlstore.Store, c *sql.Conn, b bigOrg, q hotQuery, now time.Time, phase string) []string {
	t.Helper()
	ctx := context.Background()
	tx, err := c.BeginTx(ctx, nil)
	must(t, err)
	defer tx.Rollback()
	text := s.QueryText(q.name)
	if s.Dialect() == "sqlite" {
		// A statement that reads the database first sees a changed schema and loads it again, with
		// the statistics, as the store's own statements do; EXPLAIN QUERY PLAN reads nothing, so
		// alone it would plan with whatever the connection loaded last. The phase in the text keeps
		// the connection's statement cache from answering with a plan made in the other phase.
		var n int
		must(t, tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n))
		rows, err := tx.QueryContext(ctx, "EXPLAIN QUERY PLAN /* "+phase+" */ "+text, q.args(b, now)...)
		must(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			must(t, rows.Scan(&id, &parent, &unused, &detail))
			out = append(out, detail)
		}
		must(t, rows.Err())
		return out
	}
	scope := `SELECT set_config('ony.org_id', $1, true)`
	args := []any{b.org}
	if q.system {
		scope, args = `SELECT set_config('ony.scope', 'system', true)`, nil
	}
	_, err = tx.ExecContext(ctx, scope, args...)
	must(t, err)
	var js string
	must(t, tx.QueryRowContext(ctx, "EXPLAIN (FORMAT JSON) "+text, q.args(b, now)...).Scan(&js))
	var doc []struct{ Plan pgNode }
	must(t, json.Unmarshal([]byte(js), &doc))
	var out []string
	var walk func(n pgNode)
	walk = func(n pgNode) {
		out = append(out, strings.TrimSpace(n.NodeType+" "+n.Relation+" "+n.Index))
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(doc[0].Plan)
	return out
}

type pgNode struct {
	NodeType string   `json:"Node Type"`
	Relation string   `json:"Relation Name"`
	Index    string   `json:"Index Name"`
	Plans    []pgNode `json:"Plans"`
}

// wholeOrgScan reports whether plan is one scan, alone or under the aggregate that groups what it
// reads.
func wholeOrgScan(plan []string) bool {
	return len(plan) == 1 || len(plan) == 2 && plan[0] == "Aggregate"
}

// checkPlan says what is wrong with a plan, or "".
func checkPlan(dialect string, q hotQuery, plan []string) string {
	joined := strings.Join(plan, "\n")
	for _, line := range plan {
		for _, tbl := range bigTables {
			if dialect == "postgres" && line == "Seq Scan "+tbl {
				if q.wholeOrg && wholeOrgScan(plan) {
					return ""
				}
				return "reads the whole table " + tbl
			}
			if dialect == "sqlite" && strings.HasPrefix(line, "SCAN ") {
				return "scans: " + line
			}
		}
		if q.ordered && (strings.Contains(line, "TEMP B-TREE") || strings.HasPrefix(line, "Sort") ||
			strings.HasPrefix(line, "Incremental Sort")) {
			return "sorts instead of reading in index order: " + line
		}
	}
	if q.wholeOrg && !strings.Contains(joined, "COVERING INDEX") && !strings.Contains(joined, "Index Only Scan") {
		return "reads the rows, not the index alone"
	}
	for _, ix := range q.indexes {
		if strings.Contains(joined, ix) {
			if q.name == "OpenDecisionTokensTo" && !strings.Contains(joined, "decision_tokens_open") {
				continue // both are needed: the contact by address, then the person's open tokens
			}
			return ""
		}
	}
	return fmt.Sprintf("uses none of %v", q.indexes)
}
