package voice_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// fakeHost records what the keypad asked of Ony and answers Decide with the next queued error (nil:
// success).
type fakeHost struct {
	mu      sync.Mutex
	answers []channel.Answer
	errs    []error
}

func (h *fakeHost) Decide(_ context.Context, a channel.Answer) (store.Handoff, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.answers = append(h.answers, a)
	if len(h.errs) == 0 {
		return store.Handoff{Status: store.StatusApproved}, nil
	}
	err := h.errs[0]
	h.errs = h.errs[1:]
	return store.Handoff{}, err
}

func (h *fakeHost) Report(context.Context, string, string, store.SendState) error {
	panic("the keypad does not report")
}

func (h *fakeHost) Link(context.Context, string, string, string) (channel.LinkedPerson, error) {
	panic("the keypad does not link")
}

func (h *fakeHost) Outcome(context.Context, string, string, string) error {
	panic("the keypad does not report outcomes; its providers do")
}

func (h *fakeHost) Recall(context.Context, string, string) (channel.Notification, error) {
	panic("the keypad is given the notification")
}

func (h *fakeHost) Once(context.Context, string, time.Duration) (bool, error) {
	panic("the keypad does not dedupe")
}

const callee = "+15550100001"

func callNote() channel.Notification {
	return channel.Notification{Action: "db.migrate", Risk: "high", Gist: "add a column to users", Agent: "deploybot", Token: testToken}
}

func press(h *fakeHost, n channel.Notification, state, digits string) voice.Prompt {
	return voice.Keypad(context.Background(), h, "call", testToken, callee, n, state, digits)
}

func TestStart(t *testing.T) {
	t.Parallel()
	n := callNote()
	p := voice.Start(n)
	want := "This is Ony. The agent deploybot asks to db migrate. Risk: high. add a column to users Press 1 to approve, 2 to deny, 9 to repeat."
	if p.Say != want || p.Gather != 1 || p.Hangup || p.Outcome != "" || p.State == "" {
		t.Fatalf("Start = %+v\nwant Say %q, gather 1", p, want)
	}
	n.Agent = ""
	if p := voice.Start(n); !strings.HasPrefix(p.Say, "This is Ony. An agent asks to db migrate.") {
		t.Fatalf("without an agent: %q", p.Say)
	}
	if strings.Contains(p.Say, testToken) || strings.Contains(p.State, testToken) {
		t.Fatal("the token is said or put in the state")
	}
	if m := voice.Machine(); !m.Hangup || m.Say != "" || m.Gather != 0 || m.Outcome != "machine" {
		t.Fatalf("Machine = %+v: an answering machine hears nothing", m)
	}
}

// TestKeypadMenu: 1 approves and 2 denies through Decide as the callee with the call's token; 9
// repeats; another key is explained; nothing is decided without a choice.
func TestKeypadMenu(t *testing.T) {
	t.Parallel()
	start := voice.Start(callNote())
	for _, c := range []struct {
		name, digits string
		stepUp       bool
		want         voice.Prompt
		decided      []channel.Answer
	}{
		{"1 approves", "1", false, voice.Prompt{Say: "Approved. Thank you, goodbye.", Hangup: true, Outcome: "approved"},
			[]channel.Answer{{Token: testToken, Choice: channel.ChoiceApprove, Channel: "call", From: callee}}},
		{"2 denies", "2", false, voice.Prompt{Say: "Denied. Thank you, goodbye.", Hangup: true, Outcome: "denied"},
			[]channel.Answer{{Token: testToken, Choice: channel.ChoiceDeny, Channel: "call", From: callee}}},
		{"2 denies at step-up with no code", "2", true, voice.Prompt{Say: "Denied. Thank you, goodbye.", Hangup: true, Outcome: "denied"},
			[]channel.Answer{{Token: testToken, Choice: channel.ChoiceDeny, Channel: "call", From: callee}}},
		{"9 repeats", "9", false, start, nil},
		{"another key", "5", false, voice.Prompt{Say: "Sorry, that key does nothing here. Press 1 to approve, 2 to deny, 9 to repeat.", Gather: 1, State: start.State}, nil},
		{"1 at step-up asks for the code", "1", true,
			voice.Prompt{Say: "Approving needs your authenticator code. Enter the 6 digits now.", Gather: 6, State: "t0"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := &fakeHost{}
			n := callNote()
			n.StepUp = c.stepUp
			got := press(h, n, start.State, c.digits)
			if got != c.want {
				t.Fatalf("Keypad:\n got %+v\nwant %+v", got, c.want)
			}
			if len(h.answers) != len(c.decided) || (len(c.decided) > 0 && h.answers[0] != c.decided[0]) {
				t.Fatalf("decided %+v; want %+v", h.answers, c.decided)
			}
		})
	}
}

// Three silent menus end the call without a decision; each earlier one repeats the script.
func TestKeypadSilence(t *testing.T) {
	t.Parallel()
	h := &fakeHost{}
	n := callNote()
	p := voice.Start(n)
	for i := 1; i < 3; i++ {
		p = press(h, n, p.State, "")
		if p.Hangup || p.Gather != 1 || !strings.HasPrefix(p.Say, "This is Ony.") {
			t.Fatalf("silence %d: %+v; want the script again", i, p)
		}
	}
	p = press(h, n, p.State, "")
	if !p.Hangup || p.Outcome != "no_input" || p.Gather != 0 {
		t.Fatalf("third silence: %+v; want a hang-up, no_input", p)
	}
	if len(h.answers) != 0 {
		t.Fatalf("silence decided: %+v", h.answers)
	}
}

// Step-up on the keypad: the code goes with the approval; a wrong one may be retried twice, and the
// third ends the call as stepup_failed; a short entry or silence counts as a try.
func TestKeypadStepUp(t *testing.T) {
	t.Parallel()
	wrong := problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
	n := callNote()
	n.StepUp = true

	t.Run("right code", func(t *testing.T) {
		t.Parallel()
		h := &fakeHost{}
		p := press(h, n, voice.Start(n).State, "1")
		p = press(h, n, p.State, "123456")
		if p != (voice.Prompt{Say: "Approved. Thank you, goodbye.", Hangup: true, Outcome: "approved"}) {
			t.Fatalf("right code: %+v", p)
		}
		want := channel.Answer{Token: testToken, Choice: channel.ChoiceApprove, Channel: "call", From: callee, TOTP: "123456"}
		if len(h.answers) != 1 || h.answers[0] != want {
			t.Fatalf("decided %+v; want %+v", h.answers, want)
		}
	})
	t.Run("three wrong codes", func(t *testing.T) {
		t.Parallel()
		h := &fakeHost{errs: []error{wrong, wrong, wrong}}
		p := press(h, n, voice.Start(n).State, "1")
		for i := 1; i < 3; i++ {
			p = press(h, n, p.State, "000000")
			if p.Hangup || p.Gather != 6 || !strings.HasPrefix(p.Say, "That code is not valid. Approving needs") {
				t.Fatalf("wrong code %d: %+v", i, p)
			}
		}
		p = press(h, n, p.State, "000000")
		if !p.Hangup || p.Outcome != "stepup_failed" || !strings.Contains(p.Say, "nothing was decided") {
			t.Fatalf("third wrong code: %+v", p)
		}
		if len(h.answers) != 3 {
			t.Fatalf("%d decisions tried; want 3", len(h.answers))
		}
	})
	t.Run("short entries and silence", func(t *testing.T) {
		t.Parallel()
		h := &fakeHost{}
		p := press(h, n, voice.Start(n).State, "1")
		for i, digits := range []string{"12", ""} {
			p = press(h, n, p.State, digits)
			if p.Hangup || p.Gather != 6 || !strings.HasPrefix(p.Say, "That is not 6 digits.") {
				t.Fatalf("entry %d (%q): %+v", i, digits, p)
			}
		}
		p = press(h, n, p.State, "")
		if !p.Hangup || p.Outcome != "stepup_failed" {
			t.Fatalf("third bad entry: %+v", p)
		}
		if len(h.answers) != 0 {
			t.Fatalf("a short entry reached Decide: %+v", h.answers)
		}
	})
	t.Run("a refusal that is not a wrong code ends the call", func(t *testing.T) {
		t.Parallel()
		h := &fakeHost{errs: []error{problem.New(problem.RateLimited, "too_many_attempts", "too many codes; wait 5m0s")}}
		p := press(h, n, "t0", "123456")
		if !p.Hangup || p.Outcome != "refused" || p.Say != "Too many codes; wait 5m0s. Goodbye." {
			t.Fatalf("throttled: %+v", p)
		}
	})
}

// A choice that does not count is explained and the call ends: a decided handoff says who decided.
func TestKeypadRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		err  error
		want voice.Prompt
	}{
		{"already final", problem.New(problem.Conflict, "already_final", "this handoff was already denied by Ana via sms"),
			voice.Prompt{Say: "This handoff was already denied by Ana via sms. Goodbye.", Hangup: true, Outcome: "already_final"}},
		{"expired", problem.New(problem.Conflict, "expired", "this handoff expired."),
			voice.Prompt{Say: "This handoff expired. Goodbye.", Hangup: true, Outcome: "refused"}},
		{"an internal error says nothing of it", errors.New("database down at 10.0.0.3"),
			voice.Prompt{Say: "Ony could not record that. Please decide in the console. Goodbye.", Hangup: true, Outcome: "error"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, digits := range []string{"1", "2"} {
				h := &fakeHost{errs: []error{c.err}}
				if got := press(h, callNote(), "m0", digits); got != c.want {
					t.Fatalf("pressing %s:\n got %+v\nwant %+v", digits, got, c.want)
				}
			}
		})
	}
}

// FuzzKeypad: whatever state and digits a provider posts back (the state is Ony's own, signed, but
// digits are the caller's), the keypad answers a prompt a provider can render, and decides only on
// 1, 2 or a 6-digit code.
func FuzzKeypad(f *testing.F) {
	for _, s := range [][2]string{{"m0", "1"}, {"m2", ""}, {"t0", "123456"}, {"t2", "1"}, {"", "9"}, {"x", "#"}, {"m99", "*"}, {"t", "1234567"}} {
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, state, digits string, stepUp bool) {
		h := &fakeHost{}
		n := callNote()
		n.StepUp = stepUp
		p := press(h, n, state, digits)
		if p.Hangup == (p.Gather > 0) || p.Say == "" && p.Hangup {
			t.Fatalf("state %q digits %q: %+v", state, digits, p)
		}
		if p.Gather != 0 && p.Gather != 1 && p.Gather != 6 {
			t.Fatalf("gather %d", p.Gather)
		}
		for _, a := range h.answers {
			if a.Token != testToken || a.From != callee || (a.TOTP != "" && a.TOTP != digits) {
				t.Fatalf("decided %+v", a)
			}
		}
		if len(h.answers) > 0 && digits != "1" && digits != "2" && len(digits) != 6 {
			t.Fatalf("digits %q decided", digits)
		}
	})
}
