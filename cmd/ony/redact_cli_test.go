package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ony-ai/ony/redact"
)

// A made-up token; it never was a real credential.
const cliToken = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"

func runRedact(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cmdRedact(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestRedactCLIStdin(t *testing.T) {
	in := "export GITHUB_TOKEN=" + cliToken + "\nok\n"
	out, _, err := runRedact(t, in)
	if err != nil {
		t.Fatal(err)
	}
	want := "export GITHUB_TOKEN=" + redact.Marker(redact.KindGitHubToken, redact.Fingerprint(cliFingerprintKey, cliToken)) + "\nok\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	// The same input gives the same fingerprints on every run.
	again, _, _ := runRedact(t, in, "-")
	if again != out {
		t.Errorf("not stable: %q vs %q", again, out)
	}
}

func TestRedactCLIFileAndJSON(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "payload.txt")
	in := "curl -H 'Authorization: Bearer abcDEF123456ghiJKL789' https://x\nGITHUB_TOKEN=" + cliToken + "\n"
	if err := os.WriteFile(file, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{file, "--json"}, {"--json", file}, {"-json", "--", file}} {
		out, _, err := runRedact(t, "", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.Contains(out, cliToken) || strings.Contains(out, "abcDEF123456ghiJKL789") {
			t.Fatalf("%v: the JSON holds a secret: %s", args, out)
		}
		var got struct {
			Findings []map[string]any `json:"findings"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("%v: %v in %s", args, err, out)
		}
		if len(got.Findings) != 2 {
			t.Fatalf("%v: findings %v", args, got.Findings)
		}
		f := got.Findings[1]
		start, end := int(f["start"].(float64)), int(f["end"].(float64))
		if f["kind"] != redact.KindGitHubToken || in[start:end] != cliToken || len(f) != 4 ||
			f["fingerprint"] != redact.Fingerprint(cliFingerprintKey, cliToken) {
			t.Errorf("%v: finding %v", args, f)
		}
	}
	out, _, err := runRedact(t, "nothing secret here\n", "--json")
	if err != nil || strings.TrimSpace(out) != `{"findings":[]}` {
		t.Errorf("empty: %q %v", out, err)
	}
}

func TestRedactCLIErrors(t *testing.T) {
	var ee *exitError
	if _, _, err := runRedact(t, "", "a", "b"); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("two files: %v", err)
	}
	if _, _, err := runRedact(t, "", "--bogus"); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("bad flag: %v", err)
	}
	if _, _, err := runRedact(t, "", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
	if _, errOut, err := runRedact(t, "", "-h"); err == nil || !strings.Contains(errOut, "fixed key") {
		t.Errorf("help: %v %q", err, errOut)
	}
	big := strings.Repeat("a", maxRedactInput+1)
	out, _, err := runRedact(t, big)
	if !errors.As(err, &ee) || ee.code != 1 || out != "" {
		t.Errorf("oversized input: %v, printed %d bytes", err, len(out))
	}
	// --config takes a value and is otherwise ignored.
	out, _, err = runRedact(t, "x="+cliToken, "--config", "ony.yaml", "--json")
	if err != nil || !strings.Contains(out, redact.KindGitHubToken) {
		t.Errorf("--config: %q %v", out, err)
	}
}
