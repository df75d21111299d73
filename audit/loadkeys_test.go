package audit_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ony-ai/ony/audit"
)

// LoadKeys, for commands that work on an existing instance, never creates a key: without configured
// keys and a key file it is ErrNoKeyFile and the directory stays as it was.
func TestLoadKeysCreatesNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := audit.LoadKeys(dir, nil); !errors.Is(err, audit.ErrNoKeyFile) {
		t.Fatalf("no key file: %v, want ErrNoKeyFile", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadKeys created the directory: %v", err)
	}
	created, err := audit.LoadOrCreateKeys(dir, "ony-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := audit.LoadKeys(dir, nil)
	if err != nil || len(loaded.Verifiers) != 1 || loaded.Verifiers[0] != created.Verifiers[0] {
		t.Fatalf("LoadKeys after LoadOrCreateKeys: %v, %v", loaded, err)
	}
	// Configured keys need no file.
	skey, _ := genKey(t, "ony-b")
	if _, err := audit.LoadKeys(t.TempDir(), []string{skey}); err != nil {
		t.Fatalf("configured key: %v", err)
	}
}
