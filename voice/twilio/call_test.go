package twilio_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

// placed places a call for the notification and returns it as the fake holds it.
func placed(t *testing.T, s *setup) twiliotest.Call {
	t.Helper()
	d, err := s.call.Notify(ctxT(t), notification())
	if err != nil {
		t.Fatal(err)
	}
	cs := s.fake.Calls()
	if len(cs) != 1 || d.Ref != cs[0].SID || d.State != store.SendSent {
		t.Fatalf("calls %+v, delivery %+v", cs, d)
	}
	return cs[0]
}

func TestCallNotify(t *testing.T) {
	t.Parallel()
	for _, fl := range flavors {
		t.Run(fmt.Sprint(fl), func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, fl)
			c := placed(t, s)
			want := twiliotest.Call{SID: c.SID, To: callee, From: ourNumber, URL: s.hooks + "/call?t=" + token, Method: "POST",
				StatusCallback: s.hooks + "/call/status", StatusCallbackMethod: "POST", StatusCallbackEvents: []string{"answered", "completed"},
				MachineDetection: "Enable", Timeout: "30"}
			if fmt.Sprint(c) != fmt.Sprint(want) {
				t.Fatalf("call\n%+v, want\n%+v", c, want)
			}
			if s.call.Kind() != "call" || s.call.Provider() != s.name || s.call.Update(ctxT(t), channel.Update{}) != nil {
				t.Fatal("kind, provider or update")
			}
			n := notification()
			n.Token = ""
			if _, err := s.call.Notify(ctxT(t), n); err == nil {
				t.Fatal("a call without a token was placed")
			}
			n = notification()
			n.Recipient.Address = "0912345678"
			if _, err := s.call.Notify(ctxT(t), n); err == nil || strings.Contains(err.Error(), "0912345678") {
				t.Fatalf("bad number: %v", err)
			}
			if len(s.fake.Calls()) != 1 {
				t.Fatal("a refused call reached the API")
			}
		})
	}
}

func gatherURL(s *setup, state string) string {
	return s.hooks + "/call/gather?" + url.Values{"t": {token}, "s": {state}}.Encode()
}

func TestCallDocumentRendersScriptAndGather(t *testing.T) {
	t.Parallel()
	for _, fl := range flavors {
		for _, answeredBy := range []string{"human", "unknown", ""} {
			t.Run(fmt.Sprint(fl, answeredBy), func(t *testing.T) {
				t.Parallel()
				s := newSetup(t, fl)
				c := placed(t, s)
				res := s.drv.Answer(t, c, answeredBy)
				if res.Status != 200 || res.TwiML.Gather == nil {
					t.Fatalf("document %d %q", res.Status, res.Body)
				}
				g := res.TwiML.Gather
				start := voice.Start(notification())
				if g.NumDigits != 1 || g.Input != "dtmf" || g.Method != "POST" || !g.ActionOnEmptyResult || g.Action != gatherURL(s, start.State) {
					t.Fatalf("gather %+v", g)
				}
				if len(g.Says) != 1 || g.Says[0] != start.Say || !strings.Contains(g.Says[0], "The agent ci-bot asks to deploy. Risk: high.") {
					t.Fatalf("says %q", g.Says)
				}
				if !slices.Equal(res.TwiML.Verbs, []string{"Gather", "Redirect"}) || res.TwiML.Redirect != g.Action {
					t.Fatalf("verbs %v, redirect %s", res.TwiML.Verbs, res.TwiML.Redirect)
				}
				if got := s.host.Recalls(); !slices.Equal(got, []string{token + "|call"}) {
					t.Fatalf("recalls %v", got)
				}
				noSecrets(t, s.logs.String())
			})
		}
	}
}

func TestCallMachineHangsUp(t *testing.T) {
	t.Parallel()
	for _, ab := range []string{"machine_start", "machine_end_beep", "fax"} {
		t.Run(ab, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.Twilio)
			c := placed(t, s)
			res := s.drv.Answer(t, c, ab)
			if res.Status != 200 || !slices.Equal(res.TwiML.Verbs, []string{"Hangup"}) {
				t.Fatalf("document %d %q", res.Status, res.Body)
			}
			if got := s.host.Reports(); len(got) != 1 || got[0] != (report{"twilio", c.SID, store.SendNoAnswer}) {
				t.Fatalf("reports %+v", got)
			}
			if len(s.host.Recalls()) != 0 {
				t.Fatal("a machine heard what the call is about")
			}
		})
	}
}

// press walks the keypad: answers the call, then presses each digit string into the last gather.
func press(t *testing.T, s *setup, c twiliotest.Call, digits ...string) twiliotest.Result {
	t.Helper()
	res := s.drv.Answer(t, c, "human")
	for _, d := range digits {
		if res.TwiML.Gather == nil {
			t.Fatalf("no gather to press %q into: %q", d, res.Body)
		}
		res = s.drv.Press(t, c, res.TwiML.Gather, d)
		if res.Status != 200 {
			t.Fatalf("gather %d %q", res.Status, res.Body)
		}
	}
	return res
}

func TestCallKeypad(t *testing.T) {
	t.Parallel()
	approve := channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: "call", From: callee}
	deny := channel.Answer{Token: token, Choice: channel.ChoiceDeny, Channel: "call", From: callee}
	withTOTP := approve
	withTOTP.TOTP = "123456"
	for _, tc := range []struct {
		name    string
		stepUp  bool
		digits  []string
		answers []channel.Answer
		say     string
		gather  int // digits the last prompt asks for, 0: it hangs up
	}{
		{"1 approves", false, []string{"1"}, []channel.Answer{approve}, "Approved. Thank you, goodbye.", 0},
		{"2 denies", false, []string{"2"}, []channel.Answer{deny}, "Denied. Thank you, goodbye.", 0},
		{"9 repeats", false, []string{"9"}, nil, voice.Start(notification()).Say, 1},
		{"other key", false, []string{"5"}, nil, "Sorry, that key does nothing here. Press 1 to approve, 2 to deny, 9 to repeat.", 1},
		{"silence twice asks again", false, []string{"", ""}, nil, voice.Start(notification()).Say, 1},
		{"silence thrice hangs up", false, []string{"", "", ""}, nil, "Nothing was pressed; nothing was decided. Goodbye.", 0},
		{"step-up asks for the code", true, []string{"1"}, nil, "Approving needs your authenticator code. Enter the 6 digits now.", 6},
		{"step-up approves with the code", true, []string{"1", "123456"}, []channel.Answer{withTOTP}, "Approved. Thank you, goodbye.", 0},
		{"step-up deny needs no code", true, []string{"2"}, []channel.Answer{deny}, "Denied. Thank you, goodbye.", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.Twilio)
			s.host.stepUp = tc.stepUp
			res := press(t, s, placed(t, s), tc.digits...)
			if tc.gather == 0 {
				if !res.TwiML.Hangup || res.TwiML.Gather != nil || len(res.TwiML.Says) != 1 || res.TwiML.Says[0] != tc.say {
					t.Fatalf("last prompt %q", res.Body)
				}
			} else if g := res.TwiML.Gather; g == nil || g.NumDigits != tc.gather || len(g.Says) != 1 || g.Says[0] != tc.say {
				t.Fatalf("last prompt %q", res.Body)
			}
			if got := s.host.Answers(); fmt.Sprint(got) != fmt.Sprint(tc.answers) {
				t.Fatalf("answers %+v, want %+v", got, tc.answers)
			}
			noSecrets(t, s.logs.String())
		})
	}
}

func TestCallWrongTOTPThriceEnds(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	s.host.stepUp = true
	s.host.decide = func(channel.Answer) error {
		return problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
	}
	c := placed(t, s)
	res := press(t, s, c, "1", "000000", "111111", "222222")
	if !res.TwiML.Hangup || !strings.Contains(res.TwiML.Says[0], "third wrong code") {
		t.Fatalf("last prompt %q", res.Body)
	}
	if len(s.host.Answers()) != 3 {
		t.Fatalf("answers %+v", s.host.Answers())
	}
	if got := s.host.Outcomes(); len(got) != 1 || got[0] != "twilio|"+c.SID+"|stepup_failed" {
		t.Errorf("outcomes %v", got)
	}
}

func TestCallRecallProblemSaysGoodbye(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		say  string
	}{
		{"already decided", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call"),
			"this handoff was already approved by Ana via call. Goodbye."},
		{"invalid token", problem.New(problem.Invalid, "invalid_decision_token", "unknown"),
			"This is Ony. There is nothing left to decide on this call. Goodbye."},
		{"host failure", fmt.Errorf("db down"), "This is Ony. There is nothing left to decide on this call. Goodbye."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.Twilio)
			c := placed(t, s)
			s.host.recallErr = tc.err
			res := s.drv.Answer(t, c, "human")
			if res.Status != 200 || !slices.Equal(res.TwiML.Verbs, []string{"Say", "Hangup"}) || res.TwiML.Says[0] != tc.say {
				t.Fatalf("document %d %q", res.Status, res.Body)
			}
			if len(s.host.Answers()) != 0 {
				t.Fatal("decided")
			}
		})
	}
	t.Run("decided while the menu played", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, twilio.Twilio)
		c := placed(t, s)
		g := s.drv.Answer(t, c, "human").TwiML.Gather
		s.host.recallErr = problem.New(problem.Conflict, "already_final", "this handoff was already denied by Bo in the console")
		res := s.drv.Press(t, c, g, "1")
		if !res.TwiML.Hangup || res.TwiML.Says[0] != "this handoff was already denied by Bo in the console. Goodbye." || len(s.host.Answers()) != 0 {
			t.Fatalf("gather %q, answers %+v", res.Body, s.host.Answers())
		}
	})
}

func TestCallBadRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	for _, fl := range flavors {
		for _, tc := range []struct {
			name string
			opts []twiliotest.Option
		}{
			{"no signature", []twiliotest.Option{twiliotest.NoSignature()}},
			{"wrong key", []twiliotest.Option{twiliotest.SignWith("nope")}},
			{"digits changed", []twiliotest.Option{twiliotest.Tamper("Digits", "2")}},
			{"callee changed", []twiliotest.Option{twiliotest.Tamper("To", "+14155550123")}},
			{"signature of another state", []twiliotest.Option{twiliotest.SignedFor(gatherURL(&setup{hooks: public + "/hooks/" + map[twilio.Flavor]string{0: "twilio", 1: "signalwire"}[fl]}, "t0"))}},
		} {
			t.Run(fmt.Sprint(fl, tc.name), func(t *testing.T) {
				t.Parallel()
				s := newSetup(t, fl)
				c := placed(t, s)
				doc := s.drv.Answer(t, c, "human")
				onces, recalls := s.host.Onces(), len(s.host.Recalls())
				if res := s.drv.Press(t, c, doc.TwiML.Gather, "1", tc.opts...); res.Status != 403 {
					t.Fatalf("gather %d", res.Status)
				}
				if res := s.drv.Answer(t, c, "machine_start", tc.opts...); res.Status != 403 {
					t.Fatalf("document %d", res.Status)
				}
				if res := s.drv.CallStatus(t, c, "completed", "", tc.opts...); res.Status != 403 {
					t.Fatalf("status %d", res.Status)
				}
				if len(s.host.Answers()) != 0 || len(s.host.Reports()) != 0 || s.host.Onces() != onces || len(s.host.Recalls()) != recalls {
					t.Fatal("a refused request reached the host")
				}
			})
		}
	}
	t.Run("no call sid or token", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, twilio.Twilio)
		for _, u := range []string{s.hooks + "/call?t=" + token, s.hooks + "/call", s.hooks + "/call/gather?s=m0"} {
			p := url.Values{"To": {callee}}
			if u != s.hooks+"/call?t="+token {
				p.Set("CallSid", "CA1")
			}
			if res := s.drv.Post(t, u, p); res.Status != 400 {
				t.Fatalf("%s: %d", u, res.Status)
			}
		}
		if len(s.host.Recalls()) != 0 || len(s.host.Answers()) != 0 {
			t.Fatal("acted")
		}
	})
}

func TestCallReplayedDigitsDecideOnce(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	c := placed(t, s)
	g := s.drv.Answer(t, c, "human").TwiML.Gather
	if res := s.drv.Press(t, c, g, "1"); !res.TwiML.Hangup {
		t.Fatalf("%q", res.Body)
	}
	again := s.drv.Press(t, c, g, "1")
	if again.Status != 200 || !slices.Equal(again.TwiML.Verbs, []string{"Hangup"}) {
		t.Fatalf("replay %d %q", again.Status, again.Body)
	}
	if len(s.host.Answers()) != 1 {
		t.Fatalf("decided %d times", len(s.host.Answers()))
	}
}

func TestCallStatusMapping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, answeredBy string
		want               store.SendState
	}{
		{"queued", "", ""},
		{"initiated", "", ""},
		{"ringing", "", ""},
		{"in-progress", "human", store.SendAnswered},
		{"in-progress", "", store.SendAnswered},
		{"completed", "human", store.SendAnswered},
		{"completed", "unknown", store.SendAnswered},
		{"completed", "machine_start", store.SendNoAnswer},
		{"in-progress", "fax", store.SendNoAnswer},
		{"busy", "", store.SendBusy},
		{"no-answer", "", store.SendNoAnswer},
		{"canceled", "", store.SendNoAnswer},
		{"failed", "", store.SendFailed},
		{"bogus", "", ""},
	} {
		t.Run(tc.status+"/"+tc.answeredBy, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.SignalWire)
			c := placed(t, s)
			if res := s.drv.CallStatus(t, c, tc.status, tc.answeredBy); res.Status != 204 {
				t.Fatalf("status %d", res.Status)
			}
			var want []report
			if tc.want != "" {
				want = []report{{"signalwire", c.SID, tc.want}}
			}
			if got := s.host.Reports(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("reports %+v, want %+v", got, want)
			}
		})
	}
}

func TestCallStatusSequence(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	c := placed(t, s)
	s.drv.CallStatus(t, c, "in-progress", "human")
	s.drv.CallStatus(t, c, "in-progress", "human") // Twilio's retry: the same post again
	s.drv.CallStatus(t, c, "completed", "human")
	want := []report{{"twilio", c.SID, store.SendAnswered}, {"twilio", c.SID, store.SendAnswered}}
	if got := s.host.Reports(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reports %+v", got)
	}
	s.host.reportErr = store.ErrNotFound
	if res := s.drv.CallStatus(t, twiliotest.Call{SID: "CAunknown", To: callee, From: ourNumber, StatusCallback: c.StatusCallback}, "busy", ""); res.Status != 204 {
		t.Fatalf("unknown call: %d", res.Status)
	}
	noSecrets(t, s.logs.String())
}

func TestCallRedirectCountsAsSilence(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.SignalWire)
	c := placed(t, s)
	res := s.drv.Answer(t, c, "human")
	for i, want := range []string{"m1", "m2"} {
		res = s.drv.Follow(t, c, res.TwiML)
		if res.TwiML.Gather == nil || res.TwiML.Gather.Action != gatherURL(s, want) {
			t.Fatalf("silence %d: %q", i+1, res.Body)
		}
	}
	res = s.drv.Follow(t, c, res.TwiML)
	if !res.TwiML.Hangup || res.TwiML.Says[0] != "Nothing was pressed; nothing was decided. Goodbye." || len(s.host.Answers()) != 0 {
		t.Fatalf("third silence: %q", res.Body)
	}
}
