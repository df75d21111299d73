package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/store/storetest"
)

// walkLadder posts to the member on Slack (a send, a decision token, a chat id), then waits an hour
// before the console rung: a pending handoff keeps a rung and its expiry queued in river_job.
const walkLadder = `name: walk
default: true
steps:
  - channels: [slack]
    targets: [role:member]
    wait: 1h
  - channels: [console]
    targets: [role:admin]
    wait: 1h
end: wait
`

// ownedTables are where populate leaves the org's id: every table of the schema that holds an
// organization's rows (login_challenges, audit_queue and River's are short-lived or drained).
var ownedTables = []string{"orgs.id", "users.org_id", "devices.org_id", "sessions.org_id", "handoffs.org_id",
	"idempotency_keys.org_id", "user_contacts.org_id", "user_totp.org_id", "one_time_codes.org_id", "link_codes.org_id",
	"login_challenges.org_id", "escalation_sends.org_id", "decision_tokens.org_id", "ladders.org_id", "audit_heads.org_id",
	"audit_bundles.org_id", "audit_tiles.org_id", "audit_checkpoints.org_id", "river_job.args"}

// walkOrg is an organization populated through the real services, and every value that is its own.
type walkOrg struct {
	id, tag string
	needles []string
	// sealed are values the store keeps only encrypted (the payload): no walk finds them, ever.
	sealed []string
}

// populate creates an organization with everything an organization can own: an admin and a member
// with phone, Slack and Telegram contacts, TOTP, a session, a login challenge, an open invitation
// (one-time code), a chat link code, a ladder of its own, a device, a pending handoff with a payload (a sent rung, a decision token, the next
// rung and the expiry queued), a decided one (a finished update job), an idempotency record, audit
// records sequenced and signed and then some queued.
func populate(ctx context.Context, t *testing.T, in *testserver.Instance, sl *slacktest.Server, tag string, phone, slackID, tgID string) walkOrg {
	t.Helper()
	a := in.App
	sys := audit.Actor{Kind: "system", ID: "test"}
	lower := strings.ToLower(tag)
	o := walkOrg{tag: tag}
	created, err := a.Team.Create(ctx, sys, org.NewOrg{Name: "Org " + tag, AdminEmail: "boss-" + lower + "@" + lower + ".test",
		AdminName: "Boss " + tag, Password: "a long password for " + tag})
	if err != nil {
		t.Fatalf("create org %s: %v", tag, err)
	}
	o.id = created.OrgID
	member, err := a.Team.CreateUser(ctx, sys, o.id, org.NewUser{Email: "mia-" + lower + "@" + lower + ".test", Name: "Mia " + tag, Role: store.RoleMember})
	if err != nil {
		t.Fatal(err)
	}
	for kind, addr := range map[string]string{"phone": phone, "slack": slackID, "telegram": tgID} {
		if _, err := a.Team.UpdateContact(ctx, sys, o.id, member.Email, org.Contact{Addresses: map[string]*string{kind: &addr}}); err != nil {
			t.Fatalf("contact %s: %v", kind, err)
		}
	}
	enr, err := a.TOTP.Begin(ctx, o.id, member.UserID, member.Email)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(enr.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.TOTP.Confirm(ctx, o.id, member.UserID, code); err != nil {
		t.Fatalf("totp confirm: %v", err)
	}
	// A password sign-in of someone with TOTP leaves a login challenge.
	signin, err := client.New(in.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = signin.Login(ctx, member.Email, member.Password)
	ladder := "ladder-" + lower
	if _, err := a.Escalation.PutLadder(ctx, escalation.Admin{OrgID: o.id, UserID: created.AdminID, Role: store.RoleAdmin}, ladder,
		[]byte("# note-"+lower+"\nname: "+ladder+"\nmatch: {actions: [never.matches]}\nsteps:\n  - channels: [console]\n    targets: [role:admin]\n    wait: 1h\nend: wait\n")); err != nil {
		t.Fatalf("put ladder: %v", err)
	}
	invitee := "invitee-" + lower + "@" + lower + ".test"
	if _, err := a.Team.Invite(ctx, sys, o.id, invitee, store.RoleViewer); err != nil {
		t.Fatalf("invite: %v", err)
	}
	if _, _, err := a.Team.LinkCode(ctx, audit.Actor{Kind: "user", ID: member.UserID}, o.id, "slack"); err != nil {
		t.Fatalf("link code: %v", err)
	}
	dev, err := a.Team.CreateDevice(ctx, sys, o.id, "device-"+lower)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := client.New(in.URL, dev.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	person := testserver.PersonAt(t, in.URL, in.Session(t, o.id, member.UserID))

	decided, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.frobnicate", Title: "Decided title " + tag,
		Summary: "Decided summary " + tag}, "idem-"+lower)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := person.Decide(ctx, decided.ID, "approve", "comment "+tag); err != nil {
		t.Fatalf("decide: %v", err)
	}
	// Sequenced and signed: the checkpoint covers what the org has so far.
	if _, err := a.Audit.Sequence(ctx, a.Store, o.id); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Audit.CheckpointAll(ctx, a.Store); err != nil {
		t.Fatal(err)
	}
	pending, _, err := agent.Create(ctx, client.CreateRequest{Action: "acme.frobnicate", Title: "Pending title " + tag,
		Summary: "Pending summary " + tag, Payload: &client.Payload{Kind: "text", Content: "payload-canary-" + lower}}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The first rung has run when its Slack message is out (a send and a decision token exist).
	deadline := time.Now().Add(60 * time.Second)
	for !posted(sl, slackID, "Pending title "+tag) {
		if time.Now().After(deadline) {
			t.Fatalf("org %s: the first rung never reached Slack", tag)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.needles = []string{o.id, "Org " + tag, created.AdminID, created.AdminEmail, "Boss " + tag, member.UserID, member.Email,
		"Mia " + tag, phone, slackID, tgID, invitee, dev.DeviceID, "device-" + lower, decided.ID, pending.ID,
		"Decided title " + tag, "Pending title " + tag, "Pending summary " + tag, "idem-" + lower,
		"comment " + tag, ladder, "note-" + lower}
	o.sealed = []string{"payload-canary-" + lower}
	return o
}

func posted(sl *slacktest.Server, channel, text string) bool {
	for _, m := range sl.Posted() {
		if m.Channel == channel && strings.Contains(m.Text+m.Blocks, text) {
			return true
		}
	}
	return false
}

// dbRow is one row of one table, every column rendered as bytes.
type dbRow struct {
	table string
	cols  map[string][]byte
}

// walkCatalog reads every row of every table the database's catalog lists — Ony's, River's, the
// migrations' — with every column, whatever its type, as bytes (bytea and blobs raw, the rest as
// text), so nothing the store keeps can hide from a substring search.
func walkCatalog(ctx context.Context, t *testing.T, dialect string, db *sql.DB) []dbRow {
	t.Helper()
	var tablesQ, colsQ string
	if dialect == "postgres" {
		tablesQ = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`
		colsQ = `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
	} else {
		tablesQ = `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1`
		colsQ = `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`
	}
	tables := queryStrings(ctx, t, db, tablesQ)
	if len(tables) < 20 {
		t.Fatalf("the catalog lists only %d tables: %v", len(tables), tables)
	}
	var out []dbRow
	for _, table := range tables {
		rows, err := db.QueryContext(ctx, colsQ, table)
		if err != nil {
			t.Fatal(err)
		}
		var names, exprs []string
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				t.Fatal(err)
			}
			q := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
			switch {
			case dialect == "sqlite":
				q = "CAST(" + q + " AS BLOB)"
			case typ != "bytea":
				q += "::text"
			}
			names, exprs = append(names, name), append(exprs, q)
		}
		rows.Close()
		if len(names) == 0 {
			t.Fatalf("table %s has no columns in the catalog", table)
		}
		data, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM "%s"`, strings.Join(exprs, ", "), table))
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for data.Next() {
			vals := make([][]byte, len(names))
			ptrs := make([]any, len(names))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := data.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			r := dbRow{table: table, cols: map[string][]byte{}}
			for i, n := range names {
				r.cols[n] = bytes.Clone(vals[i])
			}
			if table == "audit_bundles" {
				out = append(out, bundleRows(t, r)...)
				continue
			}
			out = append(out, r)
		}
		if err := data.Err(); err != nil {
			t.Fatal(err)
		}
		data.Close()
	}
	return out
}

// bundleRows is a row of audit_bundles as a row per leaf, so a tombstone is told apart from the leaves
// stored beside it.
func bundleRows(t *testing.T, r dbRow) []dbRow {
	t.Helper()
	var out []dbRow
	for _, leaf := range storetest.BundleLeaves(t, r.cols["data"]) {
		cols := maps.Clone(r.cols)
		cols["data"] = leaf
		out = append(out, dbRow{table: r.table, cols: cols})
	}
	return out
}

func queryStrings(ctx context.Context, t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// hits maps each needle to the table.column places the walk found it in.
func hits(rows []dbRow, needles []string, skip func(dbRow) bool) map[string][]string {
	out := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range rows {
		if skip != nil && skip(r) {
			continue
		}
		for c, v := range r.cols {
			for _, n := range needles {
				if bytes.Contains(v, []byte(n)) || bytes.Contains(bytes.ToLower(v), []byte(strings.ToLower(n))) {
					k := n + "\x00" + r.table + "." + c
					if !seen[k] {
						seen[k] = true
						out[n] = append(out[n], r.table+"."+c)
					}
				}
			}
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// openRaw connects to the instance's database past every guard the application has: PostgreSQL as
// the superuser (row-level security would hide other orgs' rows from the runtime role), SQLite
// read-only on the file.
func openRaw(t *testing.T, dialect string, in *testserver.Instance) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if dialect == "postgres" {
		db, err = sql.Open("pgx", testdb.SuperuserURL(in.DatabaseURL))
	} else {
		path := filepath.Join(in.DataDir, sqlite.FileName)
		if _, serr := os.Stat(path); serr != nil {
			t.Fatal(serr)
		}
		db, err = sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestEraseOrgLeavesNoTrace (issue 17) erases one of three populated organizations the way `ony admin
// erase-org` does, then walks the database catalog — every table, Ony's, River's and the migrations',
// every column as bytes — and finds none of the erased organization's values: not its id, names,
// emails, phone, chat ids, device, handoff ids, titles, summary, idempotency key, comment or ladder;
// the one exception is the instance log's tombstone, which names the org id and nothing else of it.
// Before erasing, the same walk finds every one of those values (the walk is not blind) and the org
// id in every table that holds an organization's rows, river_job among them (a pending rung and
// expiry were queued), and never the payload, which is stored sealed. On SQLite the raw database
// file and its write-ahead log are searched too: deleted rows must not live on in freed space. After
// the erasure the tombstone is in the instance log, every log still verifies, and the other
// organizations keep every value of theirs, queued jobs included.
func TestEraseOrgLeavesNoTrace(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			sl := slacktest.New(t, e2eSlackToken)
			ladders := t.TempDir()
			if err := os.WriteFile(filepath.Join(ladders, "walk.yaml"), []byte(walkLadder), 0o600); err != nil {
				t.Fatal(err)
			}
			in := testserver.Start(t, testserver.Options{Dialect: d, Configure: func(c *config.Config) {
				c.Escalation.LaddersDir = ladders
				c.Slack = config.Slack{BotToken: e2eSlackToken, SigningSecret: e2eSlackSecret, APIURL: sl.URL()}
			}}).Seed(t)
			gone := populate(ctx, t, in, sl, "ZQERASEX", "+14155550931", "UZQERASE1", "93100931")
			kept := populate(ctx, t, in, sl, "ZQKEEPXX", "+14155550932", "UZQKEEP01", "93200932")
			db := openRaw(t, d, in)

			rows := walkCatalog(ctx, t, d, db)
			if h := hits(rows, gone.sealed, nil); len(h) > 0 {
				t.Errorf("the payload is stored in the clear: %v", h)
			}
			before := hits(rows, gone.needles, nil)
			for _, n := range gone.needles {
				if len(before[n]) == 0 {
					t.Errorf("before erasure the walk does not find %q: it cannot prove its absence afterwards", n)
				}
			}
			// Every table an organization's rows live in holds some of the erased org's before.
			for _, where := range ownedTables {
				if !contains(before[gone.id], where) {
					t.Errorf("before erasure %s does not name the org (found in %v): the test populates too little", where, before[gone.id])
				}
			}
			if t.Failed() {
				t.FailNow()
			}

			if err := in.App.Team.EraseOrg(ctx, audit.Actor{Kind: "system", ID: "cli"}, gone.id); err != nil {
				t.Fatalf("erase: %v", err)
			}

			if d == "sqlite" {
				// Deleted rows must not live on in the files either: in pages' freed space or in the
				// write-ahead log. The org id itself is in the tombstone.
				for _, f := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
					b, err := os.ReadFile(filepath.Join(in.DataDir, f))
					if err != nil && !os.IsNotExist(err) {
						t.Fatal(err)
					}
					for n, where := range hits([]dbRow{{table: f, cols: map[string][]byte{"bytes": b}}}, append(gone.needles[1:], gone.sealed...), nil) {
						t.Errorf("after erasure %q is still in the file %s", n, where)
					}
				}
			}
			rows = walkCatalog(ctx, t, d, db)
			tombstones := 0
			isTombstone := func(r dbRow) bool {
				if r.table != "audit_bundles" || string(r.cols["org_id"]) != store.InstanceLogID {
					return false
				}
				e, err := audit.Decode(r.cols["data"])
				if err != nil || e.Type != audit.OrgErased || e.Subject.ID != gone.id {
					return false
				}
				// It names the org and nothing else of it.
				if h := hits([]dbRow{r}, gone.needles[1:], nil); len(h) > 0 {
					t.Errorf("the tombstone carries more than the org id: %v", h)
				}
				tombstones++
				return true
			}
			for n, where := range hits(rows, gone.needles, isTombstone) {
				t.Errorf("after erasure %q is still in %s", n, strings.Join(where, ", "))
			}
			if tombstones != 1 {
				t.Errorf("the instance log holds %d tombstones for the erased org, want 1", tombstones)
			}
			after := hits(rows, kept.needles, nil)
			for _, n := range kept.needles {
				if len(after[n]) == 0 {
					t.Errorf("the kept org lost %q", n)
				}
			}
			if !contains(after[kept.id], "river_job.args") {
				t.Errorf("the kept org's queued jobs went with the erased org's (org id now in %v)", after[kept.id])
			}
			reps, err := in.App.Audit.VerifyAll(ctx, in.App.Store)
			if err != nil {
				t.Fatal(err)
			}
			logs := map[string]bool{}
			for _, r := range reps {
				logs[r.Origin] = true
				if !r.OK() {
					t.Errorf("audit log %s does not verify: %s", r.Origin, r.Problem)
				}
			}
			for _, id := range []string{kept.id, in.OrgID, store.InstanceLogID} {
				if !logs[in.App.Audit.Origin(id)] {
					t.Errorf("verify did not report log %s (reported %v)", id, logs)
				}
			}
			if logs[in.App.Audit.Origin(gone.id)] {
				t.Errorf("verify still reports the erased org's log")
			}
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
