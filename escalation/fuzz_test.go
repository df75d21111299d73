package escalation

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic, every error must carry the file name,
// and every ladder it accepts must be one the engine can run.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{
		filepath.Join("testdata", "ladders", "*", "*.yaml"),
		filepath.Join("..", "configs", "ladders", "*.yaml"),
	} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, files...)
	}
	if len(seeds) < 5 {
		f.Fatalf("only %d seed files", len(seeds))
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: a\n" + one))
	f.Add([]byte("name: &a a\nsteps: [{channels: [call], targets: [*a], redial: {times: 1, gap: 10s}, wait: 11s}]\nrepeat: 10\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		ls, err := Parse(data, "fuzz.yaml", testKinds)
		if err != nil {
			var pe *Errors
			if !errors.As(err, &pe) || len(pe.List) == 0 {
				t.Fatalf("error %T %v, want a non-empty *Errors", err, err)
			}
			for _, e := range pe.List {
				if e.File != "fuzz.yaml" || e.Msg == "" || e.Line < 0 || e.Column < 0 {
					t.Fatalf("malformed error %+v", e)
				}
			}
			return
		}
		if len(ls) == 0 {
			t.Fatal("no ladders and no error")
		}
		if _, err := NewSet(ls); err != nil {
			t.Fatalf("a parsed file does not make a set: %v", err)
		}
		for _, l := range ls {
			checkLadder(t, l)
		}
	})
}

// checkLadder asserts what the engine relies on of a parsed ladder.
func checkLadder(t *testing.T, l *Ladder) {
	t.Helper()
	if !ladderNameRE.MatchString(l.Name) || l.Origin != "file:fuzz.yaml" || l.Version != 0 {
		t.Fatalf("ladder identity %q %q %d", l.Name, l.Origin, l.Version)
	}
	if len(l.Steps) < 1 || len(l.Steps) > maxSteps {
		t.Fatalf("%d steps", len(l.Steps))
	}
	if l.Repeat < 0 || l.Repeat > maxRepeat || l.Order < 0 || l.Order > maxOrder {
		t.Fatalf("repeat %d order %d", l.Repeat, l.Order)
	}
	if l.End != EndExpire && l.End != EndWait {
		t.Fatalf("end %q", l.End)
	}
	if l.Repeat > 0 && l.Cycle() < minCycle {
		t.Fatalf("repeat %d with a cycle of %s", l.Repeat, l.Cycle())
	}
	for i, s := range l.Steps {
		if len(s.Channels) == 0 || len(s.Targets) == 0 {
			t.Fatalf("step %d: %d channels, %d targets", i, len(s.Channels), len(s.Targets))
		}
		for _, c := range s.Channels {
			if !slices.Contains(testKinds.Names(), c) {
				t.Fatalf("step %d: channel %q", i, c)
			}
		}
		for _, tg := range s.Targets {
			if tg.Team() && !slices.Contains(s.Channels, string(tg.Kind)) {
				t.Fatalf("step %d: %s without its channel", i, tg)
			}
			if back, msg := parseTarget(tg.String()); msg != "" || back != tg {
				t.Fatalf("step %d: target %+v does not read back: %s", i, tg, msg)
			}
		}
		if s.Wait < 0 || s.Wait > maxWait || s.Quiet != QuietRespect && s.Quiet != QuietIgnore {
			t.Fatalf("step %d: wait %s quiet %q", i, s.Wait, s.Quiet)
		}
		if s.Redial.Times != 0 && (!slices.Contains(s.Channels, "call") || s.Redial.Gap < minRedialGap) {
			t.Fatalf("step %d: redial %+v", i, s.Redial)
		}
	}
	if last := l.Steps[len(l.Steps)-1]; l.End == EndExpire && last.Wait == 0 {
		t.Fatal("expires the moment its last step is sent")
	}

	// Offsets never go back, and walking Next visits (Repeat+1)*len(Steps) rungs.
	prev, n := time.Duration(0), 0
	for c, s, ok := 0, 0, true; ok; c, s, ok = l.Next(c, s) {
		at := l.Offset(c, s)
		if at < prev || at > l.EndOffset() {
			t.Fatalf("Offset(%d, %d) = %s after %s (end %s)", c, s, at, prev, l.EndOffset())
		}
		prev = at
		n++
	}
	if n != (l.Repeat+1)*len(l.Steps) {
		t.Fatalf("%d rungs", n)
	}
	evs := Timeline(l, time.Hour, testKinds)
	if len(evs) == 0 || !slices.IsSortedFunc(evs, func(a, b Event) int { return cmp.Compare(a.At, b.At) }) {
		t.Fatalf("timeline %+v", evs)
	}
	if last := evs[len(evs)-1]; last.Kind != EventEnd && last.Kind != EventExpire {
		t.Fatalf("timeline ends with %s", last.Kind)
	}
}
