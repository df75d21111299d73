package main

// End-to-end tests of `ony audit …` and `ony admin erase-org` against the real binary: a log written by
// a running server is checked offline by the CLI, exported, verified with no database, and tampered
// with behind the server's back (SQLite directly, PostgreSQL as the superuser with triggers off).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	_ "modernc.org/sqlite"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/store/storetest"
)

// instanceLogID is the reserved id of the instance's own log (store.InstanceLogID).
const instanceLogID = "00000000-0000-0000-0000-000000000000"

// Scenario 1: a log written by a server on SQLite, checked, exported and tampered with by the CLI.
func TestAuditCLISQLite(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dir}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	origin := "ony/orgs/" + b.OrgID

	served := auditKeys(t, ctx, srv.URL)
	if len(served) != 1 {
		t.Fatalf("GET /v1/audit/key served %d keys, want 1: %v", len(served), served)
	}

	// Canaries in every free-text field an agent or a person can fill: none may reach the log.
	const (
		titleCanary   = "TITLE-CANARY-7f3a"
		payloadCanary = "PAYLOAD-CANARY-91c2"
		summaryCanary = "SUMMARY-CANARY-44d0"
		labelCanary   = "LABEL-CANARY-0b8e"
		commentCanary = "COMMENT-CANARY-e5a1"
		reasonCanary  = "REASON-CANARY-2d9f"
	)
	canaries := []string{titleCanary, payloadCanary, summaryCanary, labelCanary, commentCanary, reasonCanary}
	agent := newClient(t, srv.URL, b.Token)
	create := func(title string) *client.Handoff {
		t.Helper()
		h, _, err := agent.Create(ctx, client.CreateRequest{
			Action: "shell.exec", Title: title, Summary: summaryCanary,
			Payload: &client.Payload{Kind: "command", Content: "echo " + payloadCanary},
			Labels:  map[string]string{"ticket": labelCanary},
		}, client.NewIdempotencyKey())
		if err != nil {
			t.Fatalf("create %q: %v", title, err)
		}
		return h
	}
	h1 := create("deploy " + titleCanary)
	// A checkpoint kept by the agent while the log is smaller: later exports must extend it.
	oldCP := auditCheckpoint(t, ctx, srv.URL, b.Token)
	mustContain(t, "the early checkpoint", oldCP, origin+"\n4\n")
	oldCPFile := filepath.Join(t.TempDir(), "old-checkpoint.txt")
	writeFile(t, oldCPFile, oldCP)
	h2 := create("second " + titleCanary)
	h3 := create("third " + titleCanary)

	admin := login(t, ctx, srv.URL, b.Email, b.Password)
	if d, err := admin.Decide(ctx, h1.ID, "approve", commentCanary); err != nil || d.Status != client.StatusApproved {
		t.Fatalf("decide: %+v, %v", d, err)
	}
	if c, err := agent.Cancel(ctx, h2.ID, reasonCanary); err != nil || c.Status != client.StatusCancelled {
		t.Fatalf("cancel: %+v, %v", c, err)
	}
	srv.stop()

	// ony audit key: the same verifier key the server served, one line.
	r := runOny(t, vars, "", "audit", "key")
	if r.code != 0 || r.stdout != served[0]+"\n" {
		t.Fatalf("ony audit key printed %q, want exactly the served key %q\n%s", r.stdout, served[0], r)
	}
	key := served[0]
	if !regexp.MustCompile(`^ony\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$`).MatchString(key) {
		t.Errorf("verifier key %q is not name+hash+base64", key)
	}
	if fi, err := os.Stat(filepath.Join(dir, "audit-signing.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the generated signing key file: %v, %v; want mode 0600", fi, err)
	}

	// ony audit verify: one log, the org's, with the 8 leaves the steps above wrote.
	r = runOny(t, vars, "", "audit", "verify")
	if r.code != 0 {
		t.Fatalf("ony audit verify: %s", r)
	}
	logs := parseVerify(t, r.stdout)
	if len(logs) != 1 || !logs[origin].ok || logs[origin].size != 8 {
		t.Fatalf("ony audit verify: want one ok line for %s with 8 leaves\n%s", origin, r)
	}
	if cp := logs[origin].checkpoint; cp < 4 || cp > 8 {
		t.Errorf("ony audit verify reports checkpoint %d, want 4 (the one served) to 8", cp)
	}
	root := logs[origin].root
	if r2 := runOny(t, vars, "", "audit", "verify", "--org", b.OrgID); r2.code != 0 || !strings.Contains(r2.stdout, "ok    "+origin+"  8 leaves") {
		t.Errorf("ony audit verify --org: %s", r2)
	}

	// Export, then verify it with no database.
	exDir := t.TempDir()
	exFile := filepath.Join(exDir, "export.json")
	r = runOny(t, vars, "", "audit", "export", "--org", b.OrgID, "-o", exFile)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("ony audit export: %s", r)
	}
	if fi, err := os.Stat(exFile); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the export file: %v, %v; want it readable by its owner only", fi, err)
	}
	raw, err := os.ReadFile(exFile)
	if err != nil {
		t.Fatal(err)
	}
	ex := readExport(t, raw)
	if ex.Format != "ony-audit-export/v1" || ex.Origin != origin || len(ex.Keys) != 1 || ex.Keys[0] != key {
		t.Errorf("export header: format %q origin %q keys %v", ex.Format, ex.Origin, ex.Keys)
	}
	mustContain(t, "the export's checkpoint", ex.Checkpoint, origin+"\n8\n")
	wantTypes := []string{"org.created", "member.invited", "device.created",
		"handoff.created", "handoff.created", "handoff.created", "handoff.decided", "handoff.cancelled"}
	events := decodeLeaves(t, ex.Leaves)
	if got := eventTypes(events); strings.Join(got, ",") != strings.Join(wantTypes, ",") {
		t.Fatalf("exported leaves are %v, want %v", got, wantTypes)
	}
	for i, h := range []*client.Handoff{h1, h2, h3} {
		e := events[3+i]
		if e.Subject.ID != h.ID || e.Details.TitleHash != sha256Hex(h.Title) {
			t.Errorf("leaf %d: subject %q title hash %q, want handoff %s with the title's SHA-256", 3+i, e.Subject.ID, e.Details.TitleHash, h.ID)
		}
	}
	if e := events[6]; e.Subject.ID != h1.ID || e.Outcome != "approved" || e.Details.Option != "approve" || e.Actor.Kind != "user" {
		t.Errorf("the decided leaf: %+v", e)
	}
	if e := events[7]; e.Subject.ID != h2.ID || e.Outcome != "cancelled" || e.Actor.Kind != "device" || e.Actor.ID != b.DeviceID {
		t.Errorf("the cancelled leaf: %+v", e)
	}
	// Neither the file nor any decoded leaf carries free text.
	var leafText strings.Builder
	for _, lf := range ex.Leaves {
		leafText.Write(lf)
		leafText.WriteByte('\n')
	}
	mustNotContain(t, "the export", string(raw), canaries...)
	mustNotContain(t, "the exported leaves", leafText.String(), canaries...)
	mustNotContain(t, "the export", string(raw)+leafText.String(), b.Password, b.Token)

	r = runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok  "+origin+"  8 leaves  root "+root {
		t.Fatalf("verify-export: want \"ok  %s  8 leaves  root %s\"\n%s", origin, root, r)
	}
	r = runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key, "--checkpoint", oldCPFile, "--json")
	if r.code != 0 {
		t.Fatalf("verify-export --checkpoint (an older checkpoint of the same log): %s", r)
	}
	var rep struct {
		Origin   string `json:"origin"`
		Size     int64  `json:"size"`
		Root     string `json:"root"`
		BadIndex int64  `json:"bad_index"`
		Problem  string `json:"problem"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Origin != origin || rep.Size != 8 || rep.Root != root || rep.BadIndex != -1 || rep.Problem != "" {
		t.Errorf("verify-export --json: %+v, %v\n%s", rep, err, r)
	}
	// Without --json, --checkpoint says that the consistency check ran and what it found.
	r = runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key, "--checkpoint", oldCPFile)
	if want := "ok  " + origin + "  8 leaves  root " + root + "\n" +
		"ok  consistency: your checkpoint of 4 leaves is a prefix of this log (RFC 6962 consistency proof checked)\n"; r.code != 0 || r.stdout != want {
		t.Errorf("verify-export --checkpoint: want\n%s\n%s", want, r)
	}

	// A key the verifier does not trust: the one keygen prints on stderr.
	r = runOny(t, nil, "", "audit", "keygen", "--name", "other")
	m := regexp.MustCompile(`verifier key \(public\): (\S+)`).FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil || !strings.HasPrefix(m[1], "other+") {
		t.Fatalf("keygen --name other: %s", r)
	}
	r = runOny(t, nil, "", "audit", "verify-export", exFile, "--key", m[1])
	if r.code != 1 || r.stdout != "" || !hasLine(r.stderr, "ony: ", "signature") {
		t.Errorf("verify-export with a key that did not sign: want exit 1 and a readable signature error\n%s", r)
	}

	// A tampered export: one leaf's bytes rewritten (the approval's option), everything else intact.
	tampered := rewriteExportLeaf(t, raw, 6, func(leaf []byte) []byte {
		return replaceOnce(t, leaf, `"option":"approve"`, `"option":"reject!"`)
	})
	tamperedFile := filepath.Join(exDir, "tampered.json")
	writeFile(t, tamperedFile, string(tampered))
	r = runOny(t, nil, "", "audit", "verify-export", tamperedFile, "--key", key)
	if r.code != 1 || !hasLine(r.stderr, "ony: ", "export does not verify") {
		t.Errorf("verify-export of a tampered export: want exit 1, \"export does not verify\"\n%s", r)
	}
	// A truncated export: the checkpoint covers more leaves than the file has.
	truncated := rewriteExport(t, raw, func(ex map[string]any) { ex["leaves"] = ex["leaves"].([]any)[:7] })
	truncFile := filepath.Join(exDir, "truncated.json")
	writeFile(t, truncFile, string(truncated))
	r = runOny(t, nil, "", "audit", "verify-export", truncFile, "--key", key)
	if r.code != 1 || !hasLine(r.stderr, "ony: ", "checkpoint covers 8 leaves, export has 7") {
		t.Errorf("verify-export of a truncated export: %s", r)
	}
	// The older checkpoint does not rescue a tampered export, and a checkpoint from a rewritten past
	// (here: one that claims more leaves than today's) is refused.
	r = runOny(t, nil, "", "audit", "verify-export", tamperedFile, "--key", key, "--checkpoint", oldCPFile)
	if r.code != 1 || r.stdout != "FAIL  consistency: not checked (see the error)\n" || !hasLine(r.stderr, "ony: ", "export does not verify") {
		t.Errorf("verify-export of a tampered export with --checkpoint: want exit 1 and the consistency check reported as not run\n%s", r)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key", []string{exFile}, 2, "--key is required"},
		{"no file", nil, 2, "usage: ony audit verify-export"},
		{"missing file", []string{filepath.Join(exDir, "missing.json"), "--key", key}, 1, "no such file"},
		{"not json", []string{oldCPFile, "--key", key}, 1, "not valid JSON"},
		{"bad key", []string{exFile, "--key", "not-a-key"}, 1, "verifier key"},
	} {
		r := runOny(t, nil, "", append([]string{"audit", "verify-export"}, c.args...)...)
		if r.code != c.code || !hasLine(r.stderr, "ony: ", c.want) || r.stdout != "" {
			t.Errorf("verify-export, %s: want exit %d and \"ony: …%s…\"\n%s", c.name, c.code, c.want, r)
		}
	}

	// Tamper with the database behind the server's back: rewrite the approval into a denial.
	db, err := sql.Open("sqlite", filepath.Join(dir, "ony.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var bundle []byte // leaf 6 is in the first bundle
	if err := db.QueryRowContext(ctx, `SELECT data FROM audit_bundles WHERE org_id = ? AND idx = 0`, b.OrgID).Scan(&bundle); err != nil {
		t.Fatalf("read bundle 0: %v", err)
	}
	leaves := storetest.BundleLeaves(t, bundle)
	leaves[6] = replaceOnce(t, leaves[6], `"outcome":"approved"`, `"outcome":"denied"`)
	forged := storetest.Bundle(leaves)
	// The trigger refuses the update first: the log is append-only even to a direct writer.
	if _, err := db.ExecContext(ctx, `UPDATE audit_bundles SET data = ? WHERE org_id = ? AND idx = 0`, forged, b.OrgID); err == nil ||
		!strings.Contains(err.Error(), "append-only") {
		t.Fatalf("updating a leaf with the trigger in place: %v, want the append-only refusal", err)
	}
	if _, err := db.ExecContext(ctx, `DROP TRIGGER audit_bundles_only_grow`); err != nil {
		t.Fatal(err)
	}
	if res, err := db.ExecContext(ctx, `UPDATE audit_bundles SET data = ? WHERE org_id = ? AND idx = 0`, forged, b.OrgID); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tamper updated %d rows, want 1", n)
	}
	db.Close()

	r = runOny(t, vars, "", "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  "+origin+"  first bad index 6:") || !hasLine(r.stderr, "ony: ", "1 of 1 logs failed verification") {
		t.Fatalf("ony audit verify after tampering with leaf 6: want exit 1 and \"first bad index 6\"\n%s", r)
	}
	if got := parseVerify(t, r.stdout)[origin]; got.ok || got.badIndex != 6 {
		t.Errorf("ony audit verify after tampering: %+v", got)
	}
	// The export taken before the tampering still verifies offline; one taken after does not (the
	// leaves no longer match the checkpoint signed over the true history).
	if r := runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key); r.code != 0 {
		t.Errorf("the export from before the tampering no longer verifies: %s", r)
	}
	after := filepath.Join(exDir, "after.json")
	if r := runOny(t, vars, "", "audit", "export", "--org", b.OrgID, "-o", after); r.code != 0 {
		t.Fatalf("export after tampering: %s", r)
	}
	if r := runOny(t, nil, "", "audit", "verify-export", after, "--key", key); r.code != 1 || !hasLine(r.stderr, "ony: ", "export does not verify") {
		t.Errorf("verify-export of an export of the tampered log: want exit 1\n%s", r)
	}
}

// A decision cut from the log's tail by whoever owns the database file: the leaf, its hashes and the
// checkpoint over it deleted, the head reset to the checkpoint before. The tree left verifies against
// itself and every remaining checkpoint; `ony audit verify` must still fail, naming the handoff.
func TestAuditVerifyTruncatedTail(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	dir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dir}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	origin := "ony/orgs/" + b.OrgID
	agent := newClient(t, srv.URL, b.Token)
	var ids []string
	for _, title := range []string{"restart the api", "rotate the keys"} {
		h, _, err := agent.Create(ctx, client.CreateRequest{Action: "shell.exec", Title: title}, "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		ids = append(ids, h.ID)
	}
	if _, err := agent.Cancel(ctx, ids[1], "not needed"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	checkpointSize := func() int64 {
		lines := strings.SplitN(auditCheckpoint(t, ctx, srv.URL, b.Token), "\n", 3)
		n, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil {
			t.Fatalf("checkpoint size %q: %v", lines[1], err)
		}
		return n
	}
	before := checkpointSize()
	admin := login(t, ctx, srv.URL, b.Email, b.Password)
	if d, err := admin.Decide(ctx, ids[0], "approve", ""); err != nil || d.Status != client.StatusApproved {
		t.Fatalf("decide: %+v, %v", d, err)
	}
	if after := checkpointSize(); after != before+1 {
		t.Fatalf("the decision took the log from %d to %d leaves, want one more", before, after)
	}
	srv.stop()
	if r := runOny(t, vars, "", "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "ok    "+origin+"  "+strconv.FormatInt(before+1, 10)+" leaves") {
		t.Fatalf("verify before the cut: %s", r)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "ony.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The file's owner drops the append-only triggers: every one of the audit tables'.
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'audit_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var triggers []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		triggers = append(triggers, n)
	}
	rows.Close()
	for _, n := range triggers {
		if _, err := db.ExecContext(ctx, `DROP TRIGGER `+n); err != nil {
			t.Fatal(err)
		}
	}
	var note []byte
	if err := db.QueryRowContext(ctx, `SELECT note FROM audit_checkpoints WHERE org_id = ? AND size = ?`, b.OrgID, before).Scan(&note); err != nil {
		t.Fatalf("the checkpoint at %d: %v", before, err)
	}
	root, err := base64.StdEncoding.DecodeString(strings.SplitN(string(note), "\n", 4)[2])
	if err != nil {
		t.Fatal(err)
	}
	firstHash := before * tlog.HashSize // the cut leaf's hash, and only it, starts here in the first tile (a small log)
	var bundle []byte                   // and the leaf is the last of the first bundle's
	if err := db.QueryRowContext(ctx, `SELECT data FROM audit_bundles WHERE org_id = ? AND idx = 0`, b.OrgID).Scan(&bundle); err != nil {
		t.Fatal(err)
	}
	if leaves := storetest.BundleLeaves(t, bundle); int64(len(leaves)) != before+1 {
		t.Fatalf("the first bundle holds %d leaves, want %d", len(leaves), before+1)
	}
	for _, c := range []struct {
		q    string
		args []any
	}{
		{`UPDATE audit_bundles SET data = ?, n = ? WHERE org_id = ? AND idx = 0`, []any{storetest.Bundle(storetest.BundleLeaves(t, bundle)[:before]), before, b.OrgID}},
		{`UPDATE audit_tiles SET data = substr(data, 1, ?) WHERE org_id = ? AND level = 0 AND idx = 0`, []any{firstHash, b.OrgID}},
		{`DELETE FROM audit_checkpoints WHERE org_id = ? AND size > ?`, []any{b.OrgID, before}},
		{`UPDATE audit_heads SET size = ?, root = ? WHERE org_id = ?`, []any{before, root, b.OrgID}},
	} {
		if res, err := db.ExecContext(ctx, c.q, c.args...); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		} else if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s touched no row", c.q)
		}
	}
	db.Close()

	for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", "--org", b.OrgID}} {
		r := runOny(t, vars, "", args...)
		got := parseVerify(t, r.stdout)[origin]
		if r.code != 1 || got.ok || got.badIndex != before ||
			!strings.Contains(got.problem, "handoff "+ids[0]+" is approved") || !strings.Contains(got.problem, "no handoff.decided leaf") {
			t.Errorf("ony %s after the cut: want exit 1 and a FAIL at index %d naming handoff %s and its handoff.decided leaf\n%s",
				strings.Join(args, " "), before, ids[0], r)
		}
	}
}

// `ony audit export` of an id that is no organization exits 1 with a line saying so, signs nothing and
// writes no file (nor truncates one that is there); the instance log stays exportable, empty or not.
func TestAuditExportUnknownOrg(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dir}
	if r := runOny(t, vars, "", "migrate"); r.code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	r := runOny(t, vars, "a perfectly long passphrase\n", "admin", "create-org", "--name", "Acme", "--admin-email", "a@acme.test", "--password-stdin", "--json")
	var org map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &org) != nil || org["org_id"] == "" {
		t.Fatalf("create-org: %s", r)
	}
	out := t.TempDir()
	const unknown = "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10"
	old := filepath.Join(out, "old.json")
	writeFile(t, old, "an export kept from before\n")
	for _, c := range []struct {
		name, org, file, want string
	}{
		{"unknown org", unknown, filepath.Join(out, "unknown.json"), "no such organization " + unknown + " in this database"},
		{"not a uuid", "not-a-uuid", filepath.Join(out, "malformed.json"), `no such organization "not-a-uuid": an organization id is a UUID`},
		{"unknown org over an old file", unknown, old, "no such organization " + unknown},
	} {
		r := runOny(t, vars, "", "audit", "export", "--org", c.org, "-o", c.file)
		if r.code != 1 || r.stdout != "" || !hasLine(r.stderr, "ony: ", c.want) {
			t.Errorf("export, %s: want exit 1 and \"ony: …%s…\"\n%s", c.name, c.want, r)
		}
		if c.file == old {
			if b, err := os.ReadFile(old); err != nil || string(b) != "an export kept from before\n" {
				t.Errorf("export, %s: the file there before now holds %q (%v)", c.name, b, err)
			}
		} else if _, err := os.Stat(c.file); !os.IsNotExist(err) {
			t.Errorf("export, %s: a file was written (%v)", c.name, err)
		}
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "ony.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var signed int
	if err := db.QueryRow(`SELECT count(*) FROM audit_checkpoints WHERE org_id IN (?, ?)`, unknown, "not-a-uuid").Scan(&signed); err != nil || signed != 0 {
		t.Errorf("checkpoints stored for the refused ids: %d, %v", signed, err)
	}
	db.Close()

	// The instance log, with nothing erased yet: exported, empty, its leaves null, and it verifies.
	key := strings.TrimSpace(runOny(t, vars, "", "audit", "key").stdout)
	for _, c := range []struct{ org, origin, leaves string }{
		{instanceLogID, "ony/instance", `"leaves": null`},
		{org["org_id"], "ony/orgs/" + org["org_id"], `"leaves": [`},
	} {
		file := filepath.Join(out, c.org+".json")
		if r := runOny(t, vars, "", "audit", "export", "--org", c.org, "-o", file); r.code != 0 {
			t.Fatalf("export %s: %s", c.org, r)
		}
		if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), c.leaves) {
			t.Errorf("export %s: want %s in\n%s", c.org, c.leaves, b)
		}
		if r := runOny(t, nil, "", "audit", "verify-export", file, "--key", key); r.code != 0 || !strings.HasPrefix(r.stdout, "ok  "+c.origin+"  ") {
			t.Errorf("verify-export of %s: %s", c.org, r)
		}
	}
}

// Scenario 2: erasing an organization deletes its log and leaves a tombstone in the instance log.
func TestAuditEraseOrg(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"ONY_DATA_DIR": t.TempDir()}
	if r := runOny(t, vars, "", "migrate"); r.code != 0 { // the admin commands create no instance
		t.Fatalf("migrate: %s", r)
	}
	createOrg := func(name, email string) string {
		t.Helper()
		r := runOny(t, vars, "a perfectly long passphrase\n", "admin", "create-org", "--name", name, "--admin-email", email, "--password-stdin", "--json")
		var out map[string]string
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["org_id"] == "" {
			t.Fatalf("create-org %s: %s", name, r)
		}
		return out["org_id"]
	}
	keep := createOrg("Keeper Corp", "keeper@keep.test")
	gone := createOrg("Erasable Ltd", "erasable-person@gone.test")
	if r := runOny(t, vars, "", "admin", "create-device", "--org", gone, "--name", "doomed-runner"); r.code != 0 {
		t.Fatalf("create-device: %s", r)
	}
	r := runOny(t, vars, "", "audit", "verify")
	if logs := parseVerify(t, r.stdout); r.code != 0 || len(logs) != 2 || logs["ony/orgs/"+gone].size != 3 || logs["ony/orgs/"+keep].size != 2 {
		t.Fatalf("verify before erasure: want two ok logs of 2 and 3 leaves\n%s", r)
	}
	goneRoot := parseVerify(t, r.stdout)["ony/orgs/"+gone].root

	// Refusals first: nothing may be erased by them.
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"mismatched confirm", []string{"--org", gone, "--confirm", keep}, 2, "--confirm"},
		{"no confirm", []string{"--org", gone}, 2, "--confirm"},
		{"no flags", nil, 2, "--org"},
		{"unknown org", []string{"--org", "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10", "--confirm", "0b7c6a0e-3c4f-4b7e-9a51-4d5c2b1f9e10"}, 1, "no such organization"},
		{"the instance log", []string{"--org", instanceLogID, "--confirm", instanceLogID}, 1, "no such organization"},
	} {
		r := runOny(t, vars, "", append([]string{"admin", "erase-org"}, c.args...)...)
		if r.code != c.code || !hasLine(lastLine(r.stderr), "ony: ", c.want) || r.stdout != "" {
			t.Errorf("erase-org, %s: want exit %d and \"ony: …%s…\"\n%s", c.name, c.code, c.want, r)
		}
	}
	r = runOny(t, vars, "", "audit", "verify")
	if logs := parseVerify(t, r.stdout); r.code != 0 || len(logs) != 2 || !logs["ony/orgs/"+gone].ok {
		t.Fatalf("verify after refused erasures: both logs must still be there\n%s", r)
	}

	r = runOny(t, vars, "", "admin", "erase-org", "--org", gone, "--confirm", gone)
	if r.code != 0 || !strings.Contains(r.stdout, "erased organization "+gone) {
		t.Fatalf("erase-org: %s", r)
	}
	r = runOny(t, vars, "", "audit", "verify")
	logs := parseVerify(t, r.stdout)
	if r.code != 0 || len(logs) != 2 || !logs["ony/instance"].ok || logs["ony/instance"].size != 1 || !logs["ony/orgs/"+keep].ok {
		t.Fatalf("verify after erasure: want the kept org's log and the instance log (1 leaf), both ok\n%s", r)
	}
	mustNotContain(t, "verify after erasure", r.stdout, gone)

	// The tombstone: who erased which org, the log's final size and root, nothing personal.
	exFile := filepath.Join(t.TempDir(), "instance.json")
	if r := runOny(t, vars, "", "audit", "export", "--org", instanceLogID, "-o", exFile); r.code != 0 {
		t.Fatalf("export the instance log: %s", r)
	}
	raw, err := os.ReadFile(exFile)
	if err != nil {
		t.Fatal(err)
	}
	ex := readExport(t, raw)
	events := decodeLeaves(t, ex.Leaves)
	if ex.Origin != "ony/instance" || len(events) != 1 || len(ex.Members) != 0 {
		t.Fatalf("instance export: origin %q, %d leaves, %d members", ex.Origin, len(events), len(ex.Members))
	}
	e := events[0]
	if e.Type != "org.erased" || e.Subject.Kind != "org" || e.Subject.ID != gone || e.Details.Size != 3 || e.Details.Root != goneRoot ||
		e.Actor.Kind != "system" || e.Actor.ID != "admin-cli" {
		t.Errorf("tombstone %+v (details %+v), want org.erased of %s by admin-cli with size 3 and root %s", e, e.Details, gone, goneRoot)
	}
	mustNotContain(t, "the instance export", string(raw)+string(ex.Leaves[0]), "Erasable", "erasable-person", "gone.test", "doomed-runner")
	key := strings.TrimSpace(runOny(t, vars, "", "audit", "key").stdout)
	if r := runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key); r.code != 0 || !strings.Contains(r.stdout, "ok  ony/instance  1 leaves") {
		t.Errorf("verify-export of the instance log: %s", r)
	}

	// The erased org is gone for every command; the kept one is untouched.
	r = runOny(t, vars, "", "admin", "erase-org", "--org", gone, "--confirm", gone)
	if r.code != 1 || !hasLine(r.stderr, "ony: ", "no such organization") {
		t.Errorf("erasing the same org twice: %s", r)
	}
	if r := runOny(t, vars, "", "admin", "create-device", "--org", gone, "--name", "x"); r.code != 1 || !hasLine(r.stderr, "ony: ", "no such organization") {
		t.Errorf("create-device in the erased org: %s", r)
	}
	// Nothing of the erased org is left in any table; the kept org still has its rows.
	leftovers := orgRows(t, filepath.Join(vars["ONY_DATA_DIR"], "ony.db"), gone)
	if len(leftovers) != 0 {
		t.Errorf("rows of the erased org remain: %v", leftovers)
	}
	if kept := orgRows(t, filepath.Join(vars["ONY_DATA_DIR"], "ony.db"), keep); kept["users"] != 1 || kept["audit_bundles"] != 1 || kept["orgs"] != 1 {
		t.Errorf("the kept org's rows: %v", kept)
	}

	// A whole log deleted directly, with no tombstone, must not pass as "nothing to verify". Known bug
	// today: verify only walks the logs that still have a head, so the org just disappears from its
	// output and it exits 0. The subtest skips on exactly that symptom.
	t.Run("log deleted without a tombstone", func(t *testing.T) {
		db, err := sql.Open("sqlite", filepath.Join(vars["ONY_DATA_DIR"], "ony.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, table := range []string{"audit_bundles", "audit_tiles", "audit_checkpoints", "audit_heads"} {
			if _, err := db.Exec(`DROP TRIGGER ` + table + `_no_delete`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`DELETE FROM `+table+` WHERE org_id = ?`, keep); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		r := runOny(t, vars, "", "audit", "verify")
		if r.code != 1 || !strings.Contains(r.stdout, "FAIL  ony/orgs/"+keep) {
			t.Errorf("verify after deleting an existing org's whole log: want exit 1 and a FAIL line for it\n%s", r)
		}
	})
}

// orgRows counts, per table of the SQLite database at path, the rows that belong to orgID (by an
// org_id column, or the orgs row itself), leaving out tables with none.
func orgRows(t *testing.T, path, orgID string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	out := map[string]int{}
	for _, table := range tables {
		var hasOrgID int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = 'org_id'`, table).Scan(&hasOrgID); err != nil {
			t.Fatal(err)
		}
		col := "org_id"
		switch {
		case table == "orgs":
			col = "id"
		case hasOrgID == 0:
			continue
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM "`+table+`" WHERE `+col+` = ?`, orgID).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		if n > 0 {
			out[table] = n
		}
	}
	if len(tables) < 5 {
		t.Fatalf("the database has only the tables %v", tables)
	}
	return out
}

// Scenario 3: keys from configuration, and what a bad one does.
func TestAuditKeygen(t *testing.T) {
	t.Parallel()
	r := runOny(t, nil, "", "audit", "keygen", "--name", "x")
	skey := strings.TrimSpace(r.stdout)
	m := regexp.MustCompile(`(?m)^verifier key \(public\): (x\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*)$`).FindStringSubmatch(r.stderr)
	if r.code != 0 || !regexp.MustCompile(`^PRIVATE\+KEY\+x\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$`).MatchString(skey) || strings.Count(r.stdout, "\n") != 1 || m == nil {
		t.Fatalf("keygen --name x: want one PRIVATE+KEY+x+… line on stdout and the verifier key on stderr\n%s", r)
	}
	vkey := m[1]
	mustNotContain(t, "keygen's stderr", r.stderr, skey)
	// The key hash in both halves is the same.
	if strings.Split(skey, "+")[3] != strings.Split(vkey, "+")[1] {
		t.Errorf("signing key %q and verifier key %q name different keys", skey, vkey)
	}
	if r2 := runOny(t, nil, "", "audit", "keygen", "--name", "x"); strings.TrimSpace(r2.stdout) == skey {
		t.Error("keygen printed the same key twice")
	}
	for _, args := range [][]string{{}, {"--name", ""}, {"--name", "a b"}, {"--name", "a+b"}} {
		r := runOny(t, nil, "", append([]string{"audit", "keygen"}, args...)...)
		if r.code != 2 || r.stdout != "" || !hasLine(r.stderr, "ony: ", "--name") {
			t.Errorf("keygen %q: want exit 2 and nothing on stdout\n%s", args, r)
		}
	}

	// A key whose base64 holds a '+' is refused by the configuration (see TestAuditKeygenKeyWithPlus):
	// use one without, so this scenario does not fail for about half of all keys.
	skey, vkey = keygenWithoutPlus(t, "x", skey, vkey)
	dir := t.TempDir()
	vars := map[string]string{"ONY_DATA_DIR": dir, "ONY_AUDIT_SIGNING_KEYS": skey}
	srv := startServe(t, vars)
	srv.waitReady()
	// The deadline bounds the requests, not the keygen runs and the server's start before them: under
	// -race beside other suites those took most of a minute (a start of 14 s, keygen runs of 2 s).
	ctx := testCtx(t, 60*time.Second)
	if got := auditKeys(t, ctx, srv.URL); len(got) != 1 || got[0] != vkey {
		t.Errorf("GET /v1/audit/key with ONY_AUDIT_SIGNING_KEYS: %v, want [%s]", got, vkey)
	}
	b := parseBootstrap(t, srv.Stdout())
	cp := auditCheckpoint(t, ctx, srv.URL, b.Token)
	mustContain(t, "the checkpoint", cp, "ony/orgs/"+b.OrgID+"\n3\n", "\n— x ")
	if r := runOny(t, vars, "", "audit", "key"); r.code != 0 || r.stdout != vkey+"\n" {
		t.Errorf("ony audit key with ONY_AUDIT_SIGNING_KEYS: %s", r)
	}
	if r := runOny(t, vars, "", "config", "check"); r.code != 0 || !strings.Contains(r.stdout, "signing_keys") {
		t.Errorf("config check: %s", r)
	} else {
		mustNotContain(t, "config check", r.stdout+r.stderr, skey, strings.SplitN(skey, "+", 5)[4])
	}
	srv.stop()
	mustNotContain(t, "the server's output", srv.Stdout()+srv.Stderr(), skey, strings.SplitN(skey, "+", 5)[4])
	if _, err := os.Stat(filepath.Join(dir, "audit-signing.key")); !os.IsNotExist(err) {
		t.Errorf("a key file exists in the data dir although keys are configured: %v", err)
	}
	// Verified with the configured key; with a rotation list the old key still verifies the old
	// checkpoints (the new key signs from now on).
	if r := runOny(t, vars, "", "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "ok    ony/orgs/"+b.OrgID+"  3 leaves  checkpoint 3") {
		t.Errorf("verify with the configured key: %s", r)
	}
	next, _ := keygenWithoutPlus(t, "x2", "", "")
	rot := map[string]string{"ONY_DATA_DIR": dir, "ONY_AUDIT_SIGNING_KEYS": next + "," + skey}
	if r := runOny(t, rot, "", "audit", "verify"); r.code != 0 || !strings.Contains(r.stdout, "ok    ony/orgs/"+b.OrgID) {
		t.Errorf("verify during a key rotation: %s", r)
	}
	if r := runOny(t, rot, "", "audit", "key"); r.code != 0 || len(strings.Fields(r.stdout)) != 2 || strings.Fields(r.stdout)[1] != vkey {
		t.Errorf("ony audit key during a rotation: want both verifier keys, new first\n%s", r)
	}
	// A key the log was never signed with cannot vouch for it.
	other := map[string]string{"ONY_DATA_DIR": dir, "ONY_AUDIT_SIGNING_KEYS": next}
	if r := runOny(t, other, "", "audit", "verify"); r.code != 1 || !strings.Contains(r.stdout, "FAIL  ony/orgs/"+b.OrgID) {
		t.Errorf("verify with a key that never signed the checkpoints: want exit 1\n%s", r)
	}

	// A malformed key: the configuration is refused before anything is opened, without echoing it.
	const canary = "NOT-A-KEY-CANARY"
	for _, bad := range []string{canary, "PRIVATE+KEY+" + canary} {
		dir := t.TempDir()
		r := runOny(t, map[string]string{"ONY_DATA_DIR": dir, "ONY_LISTEN": freeAddr(t), "ONY_AUDIT_SIGNING_KEYS": bad}, "", "serve")
		if r.code != 2 || !strings.Contains(r.stderr, "audit.signing_keys") || r.stdout != "" {
			t.Errorf("serve with ONY_AUDIT_SIGNING_KEYS=%q: want exit 2 naming audit.signing_keys\n%s", bad, r)
		}
		mustNotContain(t, "serve's output", r.stdout+r.stderr, canary)
		if _, err := os.Stat(filepath.Join(dir, "ony.db")); err == nil {
			t.Errorf("serve created a database despite ONY_AUDIT_SIGNING_KEYS=%q", bad)
		}
	}
}

// keygenWithoutPlus returns skey and vkey when skey's base64 part has no '+', else runs `ony audit
// keygen --name name` until it prints such a key.
func keygenWithoutPlus(t *testing.T, name, skey, vkey string) (string, string) {
	t.Helper()
	re := regexp.MustCompile(`verifier key \(public\): (\S+)`)
	for i := 0; i < 40; i++ {
		if skey != "" && !strings.Contains(strings.SplitN(skey, "+", 5)[4], "+") {
			return skey, vkey
		}
		r := runOny(t, nil, "", "audit", "keygen", "--name", name)
		m := re.FindStringSubmatch(r.stderr)
		if r.code != 0 || m == nil {
			t.Fatalf("keygen --name %s: %s", name, r)
		}
		skey, vkey = strings.TrimSpace(r.stdout), m[1]
	}
	t.Fatalf("keygen printed 40 keys with a '+' in their base64")
	return "", ""
}

// Keys from `ony audit keygen` whose base64 part contains '+' (about half of them) must work as
// ONY_AUDIT_SIGNING_KEYS, and a well-formed but invalid key must be a configuration error (exit 2,
// naming audit.signing_keys) rather than a failure after the database was created. Both are known
// bugs in config/validate.go today; the test skips on exactly those symptoms and runs in full once
// they are fixed.
func TestAuditKeygenKeyWithPlus(t *testing.T) {
	t.Parallel()
	t.Run("plus in base64", func(t *testing.T) {
		t.Parallel()
		var skey, vkey string
		for i := 0; i < 40 && (skey == "" || !strings.Contains(strings.SplitN(skey, "+", 5)[4], "+")); i++ {
			r := runOny(t, nil, "", "audit", "keygen", "--name", "plus")
			m := regexp.MustCompile(`verifier key \(public\): (\S+)`).FindStringSubmatch(r.stderr)
			if r.code != 0 || m == nil {
				t.Fatalf("keygen: %s", r)
			}
			skey, vkey = strings.TrimSpace(r.stdout), m[1]
		}
		if !strings.Contains(strings.SplitN(skey, "+", 5)[4], "+") {
			t.Fatal("keygen printed 40 keys without a '+' in their base64")
		}
		vars := map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_AUDIT_SIGNING_KEYS": skey}
		r := runOny(t, vars, "", "audit", "key")
		if r.code != 0 || r.stdout != vkey+"\n" {
			t.Fatalf("ony audit key with a keygen key containing '+': %s", r)
		}
	})
	t.Run("well-formed but invalid", func(t *testing.T) {
		t.Parallel()
		const canary = "CANARYCANARYCANARY"
		dir := t.TempDir()
		bad := "PRIVATE+KEY+x+00000000+AAAA" + canary + "AAAAAAAAAAAAAAAAAAAAAA="
		r := runOny(t, map[string]string{"ONY_DATA_DIR": dir, "ONY_LISTEN": freeAddr(t), "ONY_AUDIT_SIGNING_KEYS": bad}, "", "serve")
		mustNotContain(t, "serve's output", r.stdout+r.stderr, canary)
		if r.code != 2 || !strings.Contains(r.stderr, "audit.signing_keys") {
			t.Errorf("serve with a well-formed but invalid signing key: want exit 2 naming audit.signing_keys\n%s", r)
		}
		if _, err := os.Stat(filepath.Join(dir, "ony.db")); err == nil {
			t.Error("serve created a database despite an invalid signing key")
		}
	})
}

// Scenario 4: the same checks on PostgreSQL, tampering as the superuser with triggers disabled.
func TestAuditCLIPostgres(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 90*time.Second)
	u := testdb.PostgresURL(t)
	vars := map[string]string{"ONY_DATA_DIR": t.TempDir(), "ONY_DATABASE_URL": u}
	srv := startServe(t, vars)
	srv.waitReady()
	b := parseBootstrap(t, srv.Stdout())
	origin := "ony/orgs/" + b.OrgID
	key := auditKeys(t, ctx, srv.URL)[0]
	agent := newClient(t, srv.URL, b.Token)
	var ids []string
	for _, title := range []string{"one", "two"} {
		h, _, err := agent.Create(ctx, client.CreateRequest{Action: "db.migrate", Title: title}, "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		ids = append(ids, h.ID)
	}
	if _, err := agent.Cancel(ctx, ids[0], "changed my mind"); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	// Verified while the server runs.
	r := runOny(t, vars, "", "audit", "verify")
	if logs := parseVerify(t, r.stdout); r.code != 0 || len(logs) != 1 || !logs[origin].ok || logs[origin].size != 6 {
		t.Fatalf("verify on PostgreSQL: want one ok log of 6 leaves\n%s", r)
	}
	exFile := filepath.Join(t.TempDir(), "export.json")
	if r := runOny(t, vars, "", "audit", "export", "--org", b.OrgID, "-o", exFile); r.code != 0 {
		t.Fatalf("export: %s", r)
	}
	if r := runOny(t, nil, "", "audit", "verify-export", exFile, "--key", key); r.code != 0 || !strings.Contains(r.stdout, "ok  "+origin+"  6 leaves") {
		t.Fatalf("verify-export: %s", r)
	}
	if r := runOny(t, vars, "", "admin", "erase-org", "--org", "nope", "--confirm", "nope"); r.code != 1 || !hasLine(r.stderr, "ony: ", "no such organization") {
		t.Errorf("erase-org of a non-uuid org on PostgreSQL: %s", r)
	}
	srv.stop()

	// The runtime role cannot rewrite a leaf; the superuser, with triggers off, can.
	app, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	appConn, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appConn.ExecContext(ctx, `SELECT set_config('ony.org_id', $1, false)`, b.OrgID); err != nil {
		t.Fatal(err)
	}
	if _, err := appConn.ExecContext(ctx, `UPDATE audit_bundles SET data = data WHERE org_id = $1 AND idx = 0`, b.OrgID); err == nil {
		t.Error("the runtime role updated an audit leaf")
	}
	appConn.Close()
	app.Close()

	su, err := sql.Open("pgx", testdb.SuperuserURL(u))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close()
	conn, err := su.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	var bundle []byte // leaf 4 is in the first bundle
	if err := conn.QueryRowContext(ctx, `SELECT data FROM audit_bundles WHERE org_id = $1 AND idx = 0`, b.OrgID).Scan(&bundle); err != nil {
		t.Fatalf("read bundle 0: %v", err)
	}
	leaves := storetest.BundleLeaves(t, bundle)
	leaves[4] = replaceOnce(t, leaves[4], `"action":"db.migrate"`, `"action":"db.backup"`)
	if res, err := conn.ExecContext(ctx, `UPDATE audit_bundles SET data = $1 WHERE org_id = $2 AND idx = 0`, storetest.Bundle(leaves), b.OrgID); err != nil {
		t.Fatalf("tamper as the superuser: %v", err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tamper updated %d rows, want 1", n)
	}
	conn.Close()

	r = runOny(t, vars, "", "audit", "verify")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  "+origin+"  first bad index 4:") || !hasLine(r.stderr, "ony: ", "1 of 1 logs failed verification") {
		t.Fatalf("verify after tampering with leaf 4: want exit 1 and \"first bad index 4\"\n%s", r)
	}
	if r := runOny(t, vars, "", "audit", "verify", "--org", b.OrgID); r.code != 1 || !strings.Contains(r.stdout, "first bad index 4") {
		t.Errorf("verify --org after tampering: %s", r)
	}
}

// verifyLine is one line of `ony audit verify`.
type verifyLine struct {
	ok               bool
	size, checkpoint int64
	root             string
	badIndex         int64
	problem          string
}

var (
	reVerifyOK   = regexp.MustCompile(`^ok    (\S+)  (\d+) leaves  checkpoint (\d+)  root (\S+)  verified in (\S+) \((\d+) leaves/s\)$`)
	reVerifyFail = regexp.MustCompile(`^FAIL  (\S+)  first bad index (-?\d+): (.+)$`)
)

// parseVerify reads every line of `ony audit verify`'s stdout, by origin; an unknown line fails.
func parseVerify(t *testing.T, stdout string) map[string]verifyLine {
	t.Helper()
	out := map[string]verifyLine{}
	for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		if m := reVerifyOK.FindStringSubmatch(l); m != nil {
			size, _ := strconv.ParseInt(m[2], 10, 64)
			cp, _ := strconv.ParseInt(m[3], 10, 64)
			if d, err := time.ParseDuration(m[5]); err != nil || d <= 0 {
				t.Errorf("ony audit verify: the verification time in %q is not a positive duration", l)
			}
			out[m[1]] = verifyLine{ok: true, size: size, checkpoint: cp, root: m[4], badIndex: -1}
			continue
		}
		if m := reVerifyFail.FindStringSubmatch(l); m != nil {
			bad, _ := strconv.ParseInt(m[2], 10, 64)
			out[m[1]] = verifyLine{badIndex: bad, problem: m[3]}
			continue
		}
		t.Errorf("ony audit verify printed an unexpected line %q", l)
	}
	return out
}

// export mirrors the documented ony-audit-export/v1 layout.
type export struct {
	Format     string         `json:"format"`
	Origin     string         `json:"origin"`
	Keys       []string       `json:"keys"`
	Checkpoint string         `json:"checkpoint"`
	Leaves     [][]byte       `json:"leaves"`
	Members    map[string]any `json:"members"`
}

func readExport(t *testing.T, raw []byte) export {
	t.Helper()
	var ex export
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatalf("the export is not JSON: %v\n%s", err, raw)
	}
	return ex
}

// leafEvent is the part of a leaf the tests look at.
type leafEvent struct {
	Type    string `json:"type"`
	Actor   struct{ Kind, ID, Role string }
	Subject struct{ Kind, ID string }
	Outcome string `json:"outcome"`
	Details struct {
		TitleHash string `json:"title_sha256"`
		Option    string `json:"option"`
		Size      int64  `json:"size"`
		Root      string `json:"root"`
	} `json:"details"`
}

func decodeLeaves(t *testing.T, leaves [][]byte) []leafEvent {
	t.Helper()
	out := make([]leafEvent, len(leaves))
	for i, lf := range leaves {
		if err := json.Unmarshal(lf, &out[i]); err != nil {
			t.Fatalf("leaf %d is not JSON: %v\n%s", i, err, lf)
		}
	}
	return out
}

func eventTypes(es []leafEvent) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// rewriteExport decodes an export generically, lets edit change it, and re-encodes it.
func rewriteExport(t *testing.T, raw []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var ex map[string]any
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	edit(ex)
	out, err := json.MarshalIndent(ex, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteExportLeaf replaces the bytes of leaf i (base64 in the file) with edit's result.
func rewriteExportLeaf(t *testing.T, raw []byte, i int, edit func([]byte) []byte) []byte {
	t.Helper()
	return rewriteExport(t, raw, func(ex map[string]any) {
		leaves := ex["leaves"].([]any)
		lf, err := base64.StdEncoding.DecodeString(leaves[i].(string))
		if err != nil {
			t.Fatal(err)
		}
		leaves[i] = base64.StdEncoding.EncodeToString(edit(lf))
	})
}

func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if bytes.Count(b, []byte(old)) != 1 {
		t.Fatalf("%q is not in %s exactly once", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// auditKeys is GET /v1/audit/key, which needs no credentials.
func auditKeys(t *testing.T, ctx context.Context, baseURL string) []string {
	t.Helper()
	body := httpGet(t, ctx, baseURL+"/v1/audit/key", "")
	var v struct {
		Keys []string `json:"keys"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET /v1/audit/key: %v\n%s", err, body)
	}
	return v.Keys
}

// auditCheckpoint is GET /v1/audit/checkpoint as an agent: a signed note.
func auditCheckpoint(t *testing.T, ctx context.Context, baseURL, token string) string {
	t.Helper()
	return string(httpGet(t, ctx, baseURL+"/v1/audit/checkpoint", token))
}

func httpGet(t *testing.T, ctx context.Context, url, token string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: testhttp.Client.Transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v\n%s", url, resp.StatusCode, err, body)
	}
	return body
}
