package config

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const operationsPath = "../docs/operations.md"

const regenerate = "run `go generate ./config` to rewrite the table"

// referenceRows maps each option named in a reference table's first column to its row.
func referenceRows(t *testing.T, table string) (order []string, rows map[string]string) {
	t.Helper()
	rows = map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		key, _, ok := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
		if !ok {
			t.Fatalf("reference row without an option name: %q", line)
		}
		if _, dup := rows[key]; dup {
			t.Errorf("docs/operations.md names %s in two rows", key)
		}
		order = append(order, key)
		rows[key] = line
	}
	return order, rows
}

// TestOperationsReferenceCoversSchema: every option has a row in the operations guide's
// configuration reference, and every row names an option that exists.
func TestOperationsReferenceCoversSchema(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	section, err := ReferenceSection(doc)
	if err != nil {
		t.Fatalf("docs/operations.md: %v", err)
	}
	_, rows := referenceRows(t, section)
	schema := map[string]bool{}
	for _, lf := range leaves() {
		schema[lf.path] = true
		if _, ok := rows[lf.path]; !ok {
			t.Errorf("option %s has no row in docs/operations.md's configuration reference; %s", lf.path, regenerate)
		}
	}
	for key := range rows {
		if !schema[key] {
			t.Errorf("docs/operations.md's configuration reference has a row for %s, which is not an option; %s", key, regenerate)
		}
	}
	if len(rows) == 0 {
		t.Fatal("the configuration reference has no rows")
	}
}

// TestOperationsReferenceUpToDate: the table is exactly what the generator writes today, so a changed
// default, variable or description cannot leave the guide behind.
func TestOperationsReferenceUpToDate(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(operationsPath)
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Reference(example)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReferenceSection(doc)
	if err != nil {
		t.Fatalf("docs/operations.md: %v", err)
	}
	if got == want {
		return
	}
	_, gotRows := referenceRows(t, got)
	wantOrder, wantRows := referenceRows(t, want)
	for _, key := range wantOrder {
		if g, ok := gotRows[key]; ok && g != wantRows[key] {
			t.Errorf("row %s is stale:\n got %s\nwant %s", key, g, wantRows[key])
		}
	}
	t.Errorf("docs/operations.md's configuration reference differs from the schema; %s", regenerate)
}

// TestReference pins the generator's reading of the example: the defaults come from the schema, an
// empty default says what empty means, secrets name their _FILE variable, and the first sentence of
// the comment is the meaning.
func TestReference(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	table, err := Reference(example)
	if err != nil {
		t.Fatal(err)
	}
	order, rows := referenceRows(t, table)
	var paths []string
	for _, lf := range leaves() {
		paths = append(paths, lf.path)
	}
	if !slices.Equal(order, paths) {
		t.Errorf("rows are not in schema order:\n got %v\nwant %v", order, paths)
	}
	for key, want := range map[string]string{
		"listen":                   "| `listen` | `ONY_LISTEN` | `127.0.0.1:8080` | Address the HTTP server listens on, host:port. |",
		"public_url":               "| `public_url` | `ONY_PUBLIC_URL` | empty: \"http://\" + listen |",
		"database.url":             "| `database.url` | `ONY_DATABASE_URL`, `ONY_DATABASE_URL_FILE` | empty: a SQLite file in data_dir | PostgreSQL connection URL (postgres:// or postgresql://). Secret. |",
		"handoffs.default_timeout": "| `handoffs.default_timeout` | `ONY_HANDOFFS_DEFAULT_TIMEOUT` | `1h` |",
		"jobs.poll_interval":       "| `jobs.poll_interval` | `ONY_JOBS_POLL_INTERVAL` | `200ms` |",
		"auth.secure_cookies":      "| `auth.secure_cookies` | `ONY_AUTH_SECURE_COOKIES` | unset: true exactly when public_url is https |",
		"oidc.scopes":              "| `oidc.scopes` | `ONY_OIDC_SCOPES` | `openid, email, profile` |",
		"callbacks.allow_private":  "| `callbacks.allow_private` | `ONY_CALLBACKS_ALLOW_PRIVATE` | `false` |",
		"summarizer.base_url":      "e.g. http://127.0.0.1:11434/v1 for a local model. Secret. |",
		"keyring.keys":             "| `keyring.keys` | `ONY_KEYRING_KEYS`, `ONY_KEYRING_KEYS_FILE` | empty: a key file generated and kept in data_dir |",
	} {
		if !strings.Contains(rows[key], want) {
			t.Errorf("row %s:\n got %s\nwant it to contain %s", key, rows[key], want)
		}
	}
	if strings.Contains(rows["redact.rules_file"], "pattern") {
		t.Errorf("the sample block in the comment ran into the meaning: %s", rows["redact.rules_file"])
	}
}

func TestFirstSentence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"One. Two.", "One."},
		{"A model, e.g. http://x.test/v1 for one. Default (empty).", "A model, e.g. http://x.test/v1 for one."},
		{"From 1..1000. Default 5.", "From 1..1000."},
		{"Added to the built-in ones:", "Added to the built-in ones."},
		{"Default 10. Env: ONY_X", ""},
		{"Secret. Default (empty).", ""},
	} {
		if got := firstSentence(tc.in); got != tc.want {
			t.Errorf("firstSentence(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDefaultText(t *testing.T) {
	t.Parallel()
	empty := reflect.ValueOf("")
	for _, tc := range []struct {
		v       reflect.Value
		comment string
		want    string
	}{
		{reflect.ValueOf("x|y"), "Default x|y.", "`x\\|y`"},
		{reflect.ValueOf(Duration(90 * 60e9)), "", "`1h30m`"},
		{reflect.ValueOf(Duration(24 * 3600e9)), "", "`24h`"},
		{reflect.ValueOf(20), "", "`20`"},
		{reflect.ValueOf(0), "", "`0`"},
		{empty, "Secret. Default (empty): a SQLite file in data_dir. Env: ONY_X", "empty: a SQLite file in data_dir"},
		{empty, "Default (empty). Env: ONY_X", "empty"},
		{empty, "Default: none (the peer). Env: ONY_X", "none (the peer)"},
		{empty, "Default empty (off). Env: ONY_X", "empty (off)"},
		{empty, "Default (empty): webhook:<name>.", "empty: webhook:\\<name>"},
		{reflect.ValueOf((*bool)(nil)), "Default (null): true when https.", "unset: true when https"},
		{reflect.ValueOf(map[string]string(nil)), "Default: none.", "none"},
	} {
		if got := defaultText(tc.v, tc.comment); got != tc.want {
			t.Errorf("defaultText(%v, %q) = %q, want %q", tc.v, tc.comment, got, tc.want)
		}
	}
}

func TestSpliceReference(t *testing.T) {
	t.Parallel()
	doc := []byte("# Ops\n\n" + ReferenceBegin + "\nold\n" + ReferenceEnd + "\n\nafter\n")
	out, err := SpliceReference(doc, "| new |\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Ops\n\n" + ReferenceBegin + "\n| new |\n" + ReferenceEnd + "\n\nafter\n"; string(out) != want {
		t.Errorf("SpliceReference:\n%s\nwant\n%s", out, want)
	}
	if s, err := ReferenceSection(out); err != nil || s != "| new |\n" {
		t.Errorf("ReferenceSection = %q, %v", s, err)
	}
	for _, bad := range []string{
		"no markers",
		ReferenceBegin + "\nno end",
		ReferenceBegin + "\n" + ReferenceBegin + "\n" + ReferenceEnd,
		ReferenceBegin + "\n" + ReferenceEnd + ReferenceEnd,
	} {
		if _, err := SpliceReference([]byte(bad), "x"); err == nil {
			t.Errorf("SpliceReference(%q) accepted", bad)
		}
	}
}
