package handoff_test

import (
	"context"
	"testing"
	"time"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// turnGate is an Admission that refuses with refuse, or admits and runs ended when the turn ends.
type turnGate struct {
	refuse error
	ended  func()
	turns  int
}

func (g *turnGate) Admit(context.Context) (func(), error) {
	g.turns++
	if g.refuse != nil {
		return nil, g.refuse
	}
	return g.ended, nil
}

// A create asks the admission gate first. Its turn lasts until its transaction has committed, and a
// create the gate refuses writes nothing and returns the gate's error.
func TestCreateAdmission(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			g := &turnGate{}
			e := newEnvDeps(t, dialect, 20*time.Millisecond, nil, func(d *handoff.Deps) { d.Admission = g })
			ctx := context.Background()
			list := func() int {
				hs, err := e.svc.List(ctx, e.member, store.HandoffFilter{})
				if err != nil {
					t.Fatal(err)
				}
				return len(hs)
			}
			before, seenAtEnd := list(), -1 // the fixture has handoffs of its own
			g.ended = func() { seenAtEnd = list() }
			if _, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "Deploy"}, ""); err != nil {
				t.Fatal(err)
			}
			if g.turns != 1 || seenAtEnd != before+1 {
				t.Fatalf("admitted create: %d turns, %d handoffs visible when its turn ended; want 1 turn and %d (the turn covers the commit)", g.turns, seenAtEnd, before+1)
			}

			behind := problem.New(problem.Unavailable, "escalation_behind", "behind")
			g.refuse, g.ended = behind, func() { t.Error("a refused create's turn ended") }
			_, err := e.svc.Create(ctx, e.dev, handoff.CreateRequest{Action: "deploy", Title: "Refused"}, "k1")
			if code(err) != "escalation_behind" {
				t.Fatalf("refused create: %v, want escalation_behind", err)
			}
			if n := list(); n != before+1 || g.turns != 2 {
				t.Fatalf("%d handoffs after a refused create (%d turns asked), want %d (2)", n, g.turns, before+1)
			}
		})
	}
}
