package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"modernc.org/sqlite"
)

// fakeTurn is a write turn that counts how it is taken, and lets the test hold it.
type fakeTurn struct {
	ch      chan struct{}
	mu      sync.Mutex
	takes   int
	waiting int
}

func newFakeTurn() *fakeTurn { return &fakeTurn{ch: make(chan struct{}, 1)} }

func (f *fakeTurn) take(ctx context.Context) (func(), error) {
	f.mu.Lock()
	f.waiting++
	f.mu.Unlock()
	select {
	case f.ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	f.waiting--
	f.takes++
	f.mu.Unlock()
	return func() { <-f.ch }, nil
}

func (f *fakeTurn) held() bool { return len(f.ch) == 1 }

func (f *fakeTurn) counts() (takes, waiting int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.takes, f.waiting
}

// TestTurnConnTakesTheTurn: a statement outside a transaction takes the turn for its length (a
// query's until its rows are closed), a transaction takes it once from BEGIN to its end, and a write
// whose turn is held by someone else runs only once it is given back.
func TestTurnConnTakesTheTurn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	turn := newFakeTurn()
	db := sql.OpenDB(turnConnector{connector: connector{dsn: "file:" + filepath.Join(t.TempDir(), "t.db"), drv: &sqlite.Driver{}}, turn: turn.take})
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(2)

	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if n, _ := turn.counts(); n != 1 || turn.held() {
		t.Fatalf("after one statement: %d takes, held %v; want 1, given back", n, turn.held())
	}

	rows, err := db.QueryContext(ctx, `INSERT INTO t (n) VALUES (1), (2) RETURNING n`)
	if err != nil {
		t.Fatal(err)
	}
	if !turn.held() {
		t.Error("the turn is free while a query's rows are open")
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if turn.held() {
		t.Error("the turn is held after the rows were closed")
	}

	for _, end := range []string{"commit", "rollback"} {
		before, _ := turn.counts()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (n) VALUES (3)`); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := turn.counts(); n != before+1 || !turn.held() {
			t.Errorf("%s: a transaction of three statements took the turn %d times (held %v), want once, held", end, n-before, turn.held())
		}
		if end == "commit" {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		if turn.held() {
			t.Errorf("the turn is held after %s", end)
		}
	}

	// Someone else holds the turn: the write waits for it.
	release, err := turn.take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	done := make(chan error, 1)
	go func() {
		_, err := db.ExecContext(ctx, `INSERT INTO t (n) VALUES (4)`)
		note("written")
		done <- err
	}()
	for {
		if _, waiting := turn.counts(); waiting == 1 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the write ran while the turn was held (%v)", err)
		default:
		}
	}
	note("released")
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "released" {
		t.Errorf("order %v, want the write after the release", order)
	}
}
