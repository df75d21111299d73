package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

var ctx = context.Background()

// TestTreeHashIsRFC6962 compares the example's hashing with tlog's, for every size up to 70.
func TestTreeHashIsRFC6962(t *testing.T) {
	t.Parallel()
	var leaves [][]byte
	var hashes []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for n := 0; n <= 70; n++ {
		want, err := tlog.TreeHash(int64(n), r)
		if err != nil {
			t.Fatal(err)
		}
		if got := treeHash(leaves); got != want {
			t.Fatalf("treeHash of %d leaves differs from tlog.TreeHash", n)
		}
		leaf := []byte(fmt.Sprintf(`{"v":1,"n":%d}`, n))
		hs, err := tlog.StoredHashes(int64(n), leaf, r)
		if err != nil {
			t.Fatal(err)
		}
		leaves, hashes = append(leaves, leaf), append(hashes, hs...)
	}
}

// fixture is a log written and exported by Ony's own code, as the files given to third parties are.
type fixture struct {
	dir, key  string
	log       *audit.Log
	s         store.Store
	org       string
	older     string // a checkpoint file signed at 5 leaves
	exported  string // the export file, at 12 leaves
	exportRaw []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), s: testdb.Open(t, "sqlite")}
	keys, err := audit.LoadOrCreateKeys(f.dir, "ony", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.log, f.key = audit.New(keys, "ony", nil, nil), keys.Verifiers[0]
	fx := storetest.NewFixture(t, f.s, "acme")
	f.org = fx.Org.ID
	f.appendEvents(t, f.s, fx.Handoff.ID, 5)
	older, err := f.log.Checkpoint(ctx, f.s, f.org)
	if err != nil {
		t.Fatal(err)
	}
	f.older = f.write(t, "older.txt", older)
	f.appendEvents(t, f.s, fx.Handoff.ID, 7)
	var buf bytes.Buffer
	if err := f.log.Export(ctx, f.s, f.org, &buf); err != nil {
		t.Fatal(err)
	}
	f.exportRaw = buf.Bytes()
	f.exported = f.write(t, "export.json", f.exportRaw)
	// Ony's own verifier agrees that this is a good export.
	if rep, err := audit.VerifyExport(f.exportRaw, keys.Verifiers, older); err != nil || !rep.OK() || rep.Size != 12 {
		t.Fatalf("audit.VerifyExport: %+v, %v", rep, err)
	}
	return f
}

// appendEvents appends n events of the kinds a log holds, about handoff id.
func (f *fixture) appendEvents(t *testing.T, s store.Store, id string, n int) {
	t.Helper()
	kinds := []audit.Event{
		{Type: audit.HandoffCreated, Actor: audit.Actor{Kind: "device", ID: "d1"}, Channel: "api",
			Details: &audit.Details{Action: "db.migrate", Risk: "high", TitleHash: audit.TitleHash("migrate")}},
		{Type: audit.HandoffDecided, Actor: audit.Actor{Kind: "user", ID: "u1", Role: "admin"}, Channel: "slack", Outcome: "approved",
			Details: &audit.Details{Option: "approve"}},
		{Type: audit.HandoffExpired, Actor: audit.Actor{Kind: "system", ID: "expiry"}, Channel: "system", Outcome: "expired"},
		{Type: audit.HandoffCancelled, Actor: audit.Actor{Kind: "device", ID: "d1"}, Channel: "api", Outcome: "cancelled"},
	}
	err := s.InOrg(ctx, f.org, func(tx store.OrgTx) error {
		for i := 0; i < n; i++ {
			e := kinds[i%len(kinds)]
			e.Subject = audit.Subject{Kind: "handoff", ID: id}
			if err := f.log.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// edit rewrites the export's JSON and returns the new file's path.
func (f *fixture) edit(t *testing.T, name string, fn func(map[string]any)) string {
	t.Helper()
	var ex map[string]any
	if err := json.Unmarshal(f.exportRaw, &ex); err != nil {
		t.Fatal(err)
	}
	fn(ex)
	out, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	return f.write(t, name, out)
}

func runExample(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExampleVerifiesRealExports runs the example on an export Ony wrote, alone and with a checkpoint
// kept from earlier, and on the empty instance log's export (leaves null).
func TestExampleVerifiesRealExports(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if code, out, errOut := runExample(f.exported, f.key); code != 0 || out != "ok: 12 leaves\n" {
		t.Errorf("the export: exit %d, %q %q", code, out, errOut)
	}
	if code, out, errOut := runExample(f.exported, f.key, f.older); code != 0 || out != "ok: 12 leaves\n" {
		t.Errorf("the export with the checkpoint kept at 5: exit %d, %q %q", code, out, errOut)
	}
	var buf bytes.Buffer
	if err := f.log.Export(ctx, f.s, store.InstanceLogID, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"leaves": null`)) {
		t.Fatalf("the empty instance log's export has no null leaves:\n%s", buf.Bytes())
	}
	empty := f.write(t, "instance.json", buf.Bytes())
	if code, out, errOut := runExample(empty, f.key); code != 0 || out != "ok: 0 leaves\n" {
		t.Errorf("the empty instance log: exit %d, %q %q", code, out, errOut)
	}
}

// TestExampleRefusesTampering runs the example on exports edited the ways a forger would, and with
// checkpoints that are not today's log's past; each must fail with its own reason.
func TestExampleRefusesTampering(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, otherKey, err := note.GenerateKey(rand.Reader, "ony")
	if err != nil {
		t.Fatal(err)
	}
	// A fork: another database, the same organization and signing key, a different first leaf, signed
	// at 5 leaves, as an operator rewriting history and re-signing it would produce.
	fork := testdb.Open(t, "sqlite")
	forkFixture := &fixture{log: f.log, org: f.org}
	forkFixture.appendEvents(t, fork, "someone-else", 5)
	forked, err := f.log.Checkpoint(ctx, fork, f.org)
	if err != nil {
		t.Fatal(err)
	}
	otherLog, err := f.log.Checkpoint(ctx, f.s, store.InstanceLogID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"a leaf's bytes changed", []string{f.edit(t, "changed.json", func(ex map[string]any) {
			leaves := ex["leaves"].([]any)
			leaves[6] = strings.Replace(leaves[6].(string), "A", "B", 1)
		}), f.key}, "the leaves do not hash to the signed root"},
		{"two leaves swapped", []string{f.edit(t, "swapped.json", func(ex map[string]any) {
			leaves := ex["leaves"].([]any)
			leaves[2], leaves[3] = leaves[3], leaves[2]
		}), f.key}, "the leaves do not hash to the signed root"},
		{"the last leaf dropped", []string{f.edit(t, "dropped.json", func(ex map[string]any) {
			ex["leaves"] = ex["leaves"].([]any)[:11]
		}), f.key}, "the checkpoint covers 12 leaves, the file has 11"},
		{"another log's checkpoint", []string{f.edit(t, "origin.json", func(ex map[string]any) {
			ex["checkpoint"] = string(otherLog)
		}), f.key}, "the checkpoint is not for"},
		{"a key that did not sign", []string{f.exported, otherKey}, "checkpoint signature"},
		{"the keys inside the file are not trusted", []string{f.edit(t, "keys.json", func(ex map[string]any) {
			ex["keys"] = []string{otherKey}
		}), otherKey}, "checkpoint signature"},
		{"an older checkpoint of a forked history", []string{f.exported, f.key, f.write(t, "forked.txt", forked)},
			"today's log does not begin with the 5 leaves the older checkpoint signed"},
		{"an older checkpoint of another log", []string{f.exported, f.key, f.write(t, "other.txt", otherLog)}, "older checkpoint: the checkpoint is not for"},
		{"not an export", []string{f.older, f.key}, "FAIL: invalid character"},
	} {
		code, out, errOut := runExample(c.args...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "FAIL: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: want exit 1 and %q, got exit %d, %q %q", c.name, c.want, code, out, errOut)
		}
	}
	// A checkpoint bigger than the export means the log was cut since.
	f.appendEvents(t, f.s, "h", 3)
	bigger, err := f.log.Checkpoint(ctx, f.s, f.org)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runExample(f.exported, f.key, f.write(t, "bigger.txt", bigger)); code != 1 ||
		!strings.Contains(errOut, "the older checkpoint has 15 leaves, today's log 12: it was cut") {
		t.Errorf("a checkpoint of 15 against an export of 12: exit %d, %q", code, errOut)
	}
	if code, _, _ := runExample(f.exported); code != 2 {
		t.Errorf("no key: exit %d, want 2", code)
	}
}

// TestExampleStandsAlone keeps the example free of Ony's code: the standard library and
// golang.org/x/mod/sumdb only, so a third party can copy it as it is.
func TestExampleStandsAlone(t *testing.T) {
	t.Parallel()
	file, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range file.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		if strings.Contains(strings.Split(path, "/")[0], ".") && !strings.HasPrefix(path, "golang.org/x/mod/sumdb/") {
			t.Errorf("the example imports %s", path)
		}
	}
}

// TestDocsShowTheExample keeps docs/audit.md's listing of the verifier the code tested here.
func TestDocsShowTheExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- the verifier of audit/example/main.go; a test keeps this listing the same as that file -->\n```go\n"
	_, rest, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/audit.md lacks the marked listing of the example:\n%s", marker)
	}
	listing, _, ok := strings.Cut(rest, "\n```\n")
	if !ok || len(listing) < 500 {
		t.Fatalf("the listing in docs/audit.md is not closed, or too short (%d bytes)", len(listing))
	}
	if !strings.Contains(string(src), listing+"\n") {
		t.Errorf("docs/audit.md's listing is not a part of audit/example/main.go as it stands; copy it again")
	}
}
