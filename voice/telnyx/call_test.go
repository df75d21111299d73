package telnyx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

// dial places the notification's call and returns it as the fake holds it.
func dial(t testing.TB, s setup, n channel.Notification) telnyxtest.Call {
	t.Helper()
	d, err := s.p.Call().Notify(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	calls := s.fake.Calls()
	if len(calls) != 1 || d.Ref != calls[0].ID || d.State != store.SendSent {
		t.Fatalf("delivery %+v, calls %+v", d, calls)
	}
	return calls[0]
}

// post sends a call event, which must be accepted.
func post(t *testing.T, s setup, body []byte) {
	t.Helper()
	if st := s.driver.Post(t, s.url+"/call", body, telnyxtest.Good); st != 200 {
		t.Fatalf("status %d", st)
	}
}

func state(t *testing.T, v string) telnyx.ClientState {
	t.Helper()
	cs, err := telnyx.ParseClientState(v)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// lastCommand is the newest command, which must be action.
func lastCommand(t *testing.T, s setup, action string) telnyxtest.Command {
	t.Helper()
	cmds := s.fake.Commands()
	if len(cmds) == 0 || cmds[len(cmds)-1].Action != action {
		t.Fatalf("commands %+v, want a last %s", cmds, action)
	}
	return cmds[len(cmds)-1]
}

// human plays the call up to the menu: answered, then machine detection says human.
func human(t *testing.T, s setup, c telnyxtest.Call) {
	t.Helper()
	post(t, s, s.driver.Answered(c, s.fake.ClientState(c.ID)))
	if len(s.fake.Commands()) != 0 {
		t.Fatal("the script started before machine detection ended")
	}
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "human"))
}

func TestCallNotifyDials(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	if c.ConnectionID != "conn-1" || c.To != callee || c.From != from || c.WebhookURL != public+"/hooks/telnyx/call" ||
		c.TimeoutSecs != 30 || c.AMD != "detect" {
		t.Fatalf("call %+v", c)
	}
	if cs := state(t, c.ClientState); cs.Token != token || cs.State != "" {
		t.Fatalf("client state %+v", cs)
	}
	if _, err := s.p.Call().Notify(ctxT(t), channel.Notification{Recipient: channel.Recipient{Address: callee}}); err == nil {
		t.Fatal("a call without a token was placed")
	}
}

func TestCallDialErrorIsReturnedOnce(t *testing.T) {
	t.Parallel()
	for _, code := range []int{500, 503, 429} {
		s := newSetup(t)
		s.fake.Fail(1, code)
		_, err := s.p.Call().Notify(ctxT(t), notification(false))
		var ae *telnyx.APIError
		if !errors.As(err, &ae) || ae.Status != code || !ae.Temporary() {
			t.Fatalf("%d: error %v", code, err)
		}
		if s.fake.Requests() != 1 || len(s.fake.Calls()) != 0 {
			t.Fatalf("%d: a dial was repeated (%d requests)", code, s.fake.Requests())
		}
	}
}

func TestCallHumanHearsTheScriptAndApproves(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	n := notification(false)
	c := dial(t, s, n)
	human(t, s, c)
	g := lastCommand(t, s, "gather_using_speak")
	want := voice.Start(n)
	if g.Payload != want.Say || g.MinimumDigits != 1 || g.MaximumDigits != 1 || g.Voice == "" || g.CallID != c.ID {
		t.Fatalf("gather %+v", g)
	}
	if !strings.Contains(g.Payload, "ci-runner") || !strings.Contains(g.Payload, "Press 1 to approve") {
		t.Fatalf("script %q", g.Payload)
	}
	if cs := state(t, g.ClientState); cs.Token != token || cs.State != want.State {
		t.Fatalf("gather state %+v", cs)
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "1", "valid"))
	wantAnswer := channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: "call", From: callee}
	if a := s.host.Answers(); len(a) != 1 || a[0] != wantAnswer {
		t.Fatalf("answers %+v", a)
	}
	sp := lastCommand(t, s, "speak")
	if !strings.HasPrefix(sp.Payload, "Approved.") {
		t.Fatalf("speak %q", sp.Payload)
	}
	if cs := state(t, sp.ClientState); cs.Token != "" || cs.State != "bye" {
		t.Fatalf("goodbye state carries %+v", cs)
	}
	post(t, s, s.driver.SpeakEnded(c, s.fake.ClientState(c.ID)))
	lastCommand(t, s, "hangup")
	post(t, s, s.driver.Hangup(c, s.fake.ClientState(c.ID), "normal_clearing"))
	if r := s.host.Reports(); len(r) != 1 || r[0] != "telnyx|"+c.ID+"|answered" {
		t.Fatalf("reports %v", r)
	}
	if logs := s.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, callee) {
		t.Fatalf("logs leak: %s", logs)
	}
}

func TestCallKeypad(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	human(t, s, c)
	// Silence repeats the menu with the count in the state; 9 repeats; a stray key says so; 2 denies.
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "", "timeout"))
	if g := lastCommand(t, s, "gather_using_speak"); state(t, g.ClientState).State != "m1" {
		t.Fatalf("after silence: %+v", state(t, g.ClientState))
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "9", "valid"))
	if g := lastCommand(t, s, "gather_using_speak"); !strings.HasPrefix(g.Payload, "This is Ony.") {
		t.Fatalf("9 did not repeat: %q", g.Payload)
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "*", "valid"))
	if g := lastCommand(t, s, "gather_using_speak"); !strings.HasPrefix(g.Payload, "Sorry") {
		t.Fatalf("stray key: %q", g.Payload)
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "2", "valid"))
	if a := s.host.Answers(); len(a) != 1 || a[0].Choice != channel.ChoiceDeny || a[0].Token != token {
		t.Fatalf("answers %+v", a)
	}
	if sp := lastCommand(t, s, "speak"); !strings.HasPrefix(sp.Payload, "Denied.") {
		t.Fatalf("speak %q", sp.Payload)
	}
}

func TestCallStepUpTakesTheTOTP(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.host.recall = func(string) (channel.Notification, error) { return notification(true), nil }
	wrong := 0
	s.host.decide = func(a channel.Answer) (store.Handoff, error) {
		if a.TOTP != "654321" {
			wrong++
			return store.Handoff{}, problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
		}
		return store.Handoff{}, nil
	}
	c := dial(t, s, notification(true))
	human(t, s, c)
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "1", "valid"))
	if len(s.host.Answers()) != 0 {
		t.Fatal("approved before the TOTP")
	}
	g := lastCommand(t, s, "gather_using_speak")
	if g.MinimumDigits != 6 || g.MaximumDigits != 6 || state(t, g.ClientState).State != "t0" {
		t.Fatalf("TOTP gather %+v", g)
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "123456", "valid"))
	if g := lastCommand(t, s, "gather_using_speak"); state(t, g.ClientState).State != "t1" {
		t.Fatal("a wrong code did not ask again")
	}
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "654321", "valid"))
	a := s.host.Answers()
	if len(a) != 2 || a[1] != (channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: "call", From: callee, TOTP: "654321"}) {
		t.Fatalf("answers %+v", a)
	}
	if sp := lastCommand(t, s, "speak"); !strings.HasPrefix(sp.Payload, "Approved.") {
		t.Fatalf("speak %q", sp.Payload)
	}
}

func TestCallThreeWrongCodesEnd(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.host.recall = func(string) (channel.Notification, error) { return notification(true), nil }
	s.host.decide = func(channel.Answer) (store.Handoff, error) {
		return store.Handoff{}, problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
	}
	c := dial(t, s, notification(true))
	human(t, s, c)
	post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "1", "valid"))
	for range 3 {
		post(t, s, s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "000000", "valid"))
	}
	if sp := lastCommand(t, s, "speak"); !strings.Contains(sp.Payload, "third wrong code") {
		t.Fatalf("speak %q", sp.Payload)
	}
	if len(s.host.Answers()) != 3 {
		t.Fatalf("answers %d", len(s.host.Answers()))
	}
	if got := s.host.Outcomes(); len(got) != 1 || got[0] != "telnyx|"+c.ID+"|stepup_failed" {
		t.Errorf("outcomes %v", got)
	}
}

func TestCallMachineHangsUpSilently(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.Answered(c, s.fake.ClientState(c.ID)))
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "machine"))
	cmds := s.fake.Commands()
	if len(cmds) != 1 || cmds[0].Action != "hangup" || cmds[0].Payload != "" {
		t.Fatalf("commands %+v", cmds)
	}
	if r := s.host.Reports(); len(r) != 1 || r[0] != "telnyx|"+c.ID+"|no_answer" {
		t.Fatalf("reports %v", r)
	}
	post(t, s, s.driver.Hangup(c, s.fake.ClientState(c.ID), "normal_clearing"))
	if r := s.host.Reports(); len(r) != 1 {
		t.Fatalf("the hang-up after a machine was reported again: %v", r)
	}
	if len(s.host.Answers()) != 0 {
		t.Fatal("decided")
	}
}

func TestCallRecallRefusedSaysGoodbye(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"already final", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via sms"), "already decided"},
		{"invalid token", problem.New(problem.Invalid, "invalid_decision_token", "that link is not valid"), "no longer open"},
		{"store down", errors.New("db down"), "no longer open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.host.recall = func(string) (channel.Notification, error) { return channel.Notification{}, tc.err }
			c := dial(t, s, notification(false))
			human(t, s, c)
			sp := lastCommand(t, s, "speak")
			if !strings.Contains(sp.Payload, tc.want) || strings.Contains(sp.Payload, "deploy") {
				t.Fatalf("speak %q", sp.Payload)
			}
			post(t, s, s.driver.SpeakEnded(c, s.fake.ClientState(c.ID)))
			lastCommand(t, s, "hangup")
		})
	}
}

func TestCallHangupCauses(t *testing.T) {
	t.Parallel()
	for cause, want := range map[string]store.SendState{
		"normal_clearing":    store.SendAnswered,
		"timeout":            store.SendNoAnswer,
		"no_answer":          store.SendNoAnswer,
		"originator_cancel":  store.SendNoAnswer,
		"user_busy":          store.SendBusy,
		"call_rejected":      store.SendBusy,
		"unallocated_number": store.SendFailed,
		"normal_unspecified": store.SendFailed,
		"":                   store.SendFailed,
	} {
		if got := telnyx.HangupState(cause); got != want {
			t.Errorf("%q: %s, want %s", cause, got, want)
		}
	}
	s := newSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.Hangup(c, s.fake.ClientState(c.ID), "user_busy"))
	if r := s.host.Reports(); len(r) != 1 || r[0] != "telnyx|"+c.ID+"|busy" {
		t.Fatalf("reports %v", r)
	}
}

func TestCallCommandRetried(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	post(t, s, s.driver.Answered(c, s.fake.ClientState(c.ID)))
	s.fake.Fail(2, 503)
	before := s.fake.Requests()
	post(t, s, s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "human"))
	if got := s.fake.Requests() - before; got != 3 {
		t.Fatalf("%d requests, want 3", got)
	}
	if len(s.fake.Commands()) != 1 || len(*s.waits) != 2 {
		t.Fatalf("commands %+v, waits %v", s.fake.Commands(), *s.waits)
	}
	if s.fake.Commands()[0].CommandID == "" {
		t.Fatal("a retried command without a command_id")
	}
}

func TestCallWebhookRefusesWithoutActing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		how    telnyxtest.Sig
		status int
	}{
		{"missing", telnyxtest.Missing, 401},
		{"wrong key", telnyxtest.WrongKey, 403},
		{"stale", telnyxtest.Stale, 403},
		{"tampered", telnyxtest.Tampered, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			c := dial(t, s, notification(false))
			if st := s.driver.Post(t, s.url+"/call", s.driver.MachineDetected(c, s.fake.ClientState(c.ID), "human"), tc.how); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if st := s.driver.Post(t, s.url+"/call", s.driver.GatherEnded(c, telnyx.ClientState{Token: token, State: "m0"}.Encode(), "1", "valid"), tc.how); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if st := s.driver.Post(t, s.url+"/call", s.driver.Hangup(c, "", "user_busy"), tc.how); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if len(s.fake.Commands()) != 0 || len(s.host.Answers()) != 0 || len(s.host.Reports()) != 0 || s.host.Onces() != 0 {
				t.Fatal("a refused event acted")
			}
		})
	}
}

func TestCallReplayedGatherDecidesOnce(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	human(t, s, c)
	body := s.driver.GatherEnded(c, s.fake.ClientState(c.ID), "1", "valid")
	post(t, s, body)
	post(t, s, body)
	if len(s.host.Answers()) != 1 {
		t.Fatalf("answers %+v", s.host.Answers())
	}
}

func TestCallForeignEventsIgnored(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := dial(t, s, notification(false))
	// A gather with no Ony state (another application's call), a client_state not Ony's, a gather
	// cut by the hang-up: none decide or command.
	post(t, s, s.driver.GatherEnded(c, "", "1", "valid"))
	post(t, s, s.driver.MachineDetected(c, "", "machine"))
	post(t, s, s.driver.MachineDetected(c, "", "human"))
	post(t, s, s.driver.GatherEnded(c, "bm90IGpzb24=", "1", "valid"))
	post(t, s, s.driver.GatherEnded(c, "%%%", "1", "valid"))
	post(t, s, s.driver.GatherEnded(c, telnyx.ClientState{Token: token, State: "m0"}.Encode(), "", "call_hangup"))
	post(t, s, s.driver.Event("call.initiated", map[string]any{"call_control_id": c.ID, "direction": "incoming"}))
	post(t, s, s.driver.Event("call.bridged", map[string]any{"call_control_id": c.ID}))
	if len(s.fake.Commands()) != 0 || len(s.host.Answers()) != 0 || len(s.host.Reports()) != 0 {
		t.Fatalf("acted: %+v %+v", s.fake.Commands(), s.host.Answers())
	}
}
