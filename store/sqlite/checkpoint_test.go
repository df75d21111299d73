package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store/sqlite"
)

// TestWALIsCheckpointedBesideWriters: commits do not checkpoint (wal_autocheckpoint 0), so without the
// store's own checkpoints the write-ahead log would grow with every write. Rounds of ~200 pages, each
// after a pause longer than the checkpoint interval, must keep the log near one round's size: a
// complete checkpoint lets the next write start the log over.
func TestWALIsCheckpointedBesideWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), sqlite.FileName)
	s, err := sqlite.Open(ctx, path, testdb.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db := s.DB()
	var auto int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE scratch (b blob)`); err != nil {
		t.Fatal(err)
	}
	const rounds, pageSize = 10, 4096
	blob := make([]byte, 200*pageSize)
	var largest int64
	for range rounds {
		if _, err := db.ExecContext(ctx, `INSERT INTO scratch (b) VALUES (?)`, blob); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, fi.Size())
		time.Sleep(2 * sqlite.CheckpointInterval)
	}
	// Unchecked, the log would hold every round: rounds × 200 pages.
	if grown := int64(rounds*len(blob)) / 2; largest > grown {
		t.Fatalf("the write-ahead log reached %d bytes after %d rounds of %d; it is not being checkpointed", largest, rounds, len(blob))
	}
}
