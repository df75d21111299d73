package redact

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGuardCleans(t *testing.T) {
	g := NewGuard(Default(), time.Second)
	out, err := g.Clean(context.Background(), testKey, "token "+ghTok)
	if err != nil || strings.Contains(out, ghTok) || !strings.Contains(out, "[REDACTED:github_token:") {
		t.Fatalf("%q %v", out, err)
	}
	out, err = g.Clean(context.Background(), testKey, "nothing here")
	if err != nil || out != "nothing here" {
		t.Fatalf("%q %v", out, err)
	}
	if s := g.Stats(); s != (GuardStats{Passed: 1, Redacted: 1}) {
		t.Errorf("stats %+v", s)
	}
}

func TestGuardFailsClosedOnPanic(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.hook = func() { panic("boom") }
	g := NewGuard(r, time.Second)
	out, err := g.Clean(context.Background(), testKey, "token "+ghTok)
	if !errors.Is(err, ErrBlocked) || out != "" {
		t.Fatalf("%q %v", out, err)
	}
	if b, err := g.CleanJSON(context.Background(), testKey, []byte(`{"a":1}`)); !errors.Is(err, ErrBlocked) || b != nil {
		t.Fatalf("%q %v", b, err)
	}
	if s := g.Stats(); s != (GuardStats{Blocked: 2}) {
		t.Errorf("stats %+v", s)
	}
}

func TestGuardFailsClosedOnTimeout(t *testing.T) {
	g := NewGuard(Default(), time.Nanosecond)
	for range 20 {
		out, err := g.Clean(context.Background(), testKey, "token "+ghTok)
		if !errors.Is(err, ErrBlocked) || out != "" {
			t.Fatalf("%q %v", out, err)
		}
	}
	if s := g.Stats(); s.Blocked != 20 || s.Passed+s.Redacted != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestGuardSlowRedactor(t *testing.T) {
	r, _ := New(Options{})
	release := make(chan struct{})
	r.hook = func() { <-release }
	defer close(release)
	g := NewGuard(r, 20*time.Millisecond)
	start := time.Now()
	if _, err := g.Clean(context.Background(), testKey, "x"); !errors.Is(err, ErrBlocked) {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestGuardContextAndNil(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g := NewGuard(Default(), time.Second)
	if _, err := g.Clean(ctx, testKey, "x"); !errors.Is(err, ErrBlocked) {
		t.Error(err)
	}
	if _, err := NewGuard(nil, time.Second).Clean(context.Background(), testKey, "x"); !errors.Is(err, ErrBlocked) {
		t.Error(err)
	}
	var none *Guard
	if _, err := none.Clean(context.Background(), testKey, "x"); !errors.Is(err, ErrBlocked) {
		t.Error(err)
	}
}

func TestGuardConcurrent(t *testing.T) {
	g := NewGuard(Default(), 5*time.Second)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := "plain text"
			if i%2 == 0 {
				text = "t=" + ghTok
			}
			if out, err := g.Clean(context.Background(), testKey, text); err != nil || strings.Contains(out, ghTok) {
				t.Errorf("%q %v", out, err)
			}
		}()
	}
	wg.Wait()
	if s := g.Stats(); s.Passed != 8 || s.Redacted != 8 {
		t.Errorf("stats %+v", s)
	}
}
