package plivo_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

// placed places a call to Ana and returns it as the fake holds it.
func placed(t *testing.T, s setup) plivotest.Call {
	t.Helper()
	d, err := s.call.Notify(ctxT(t), notification(ana))
	if err != nil {
		t.Fatal(err)
	}
	calls := s.fake.Calls()
	if len(calls) != 1 || d.Ref != calls[0].RequestUUID || d.State != store.SendSent {
		t.Fatalf("delivery %+v, calls %+v", d, calls)
	}
	return calls[0]
}

func TestCallNotifyPlaces(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := placed(t, s)
	want := plivotest.Call{RequestUUID: c.RequestUUID, CallUUID: c.CallUUID, From: "14155550100", To: "351912345678",
		AnswerURL: s.hooks + "/call?t=" + url.QueryEscape(token), AnswerMethod: "POST",
		HangupURL: s.hooks + "/call/hangup", HangupMethod: "POST", RingTimeout: 30,
		MachineDetection: "true", MachineDetectionURL: s.hooks + "/call/machine"}
	if c != want {
		t.Fatalf("call\n%+v\nwant\n%+v", c, want)
	}
}

func TestCallNotifyErrors(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.fake.Fail("Call", 1, 503)
	_, err := s.call.Notify(ctxT(t), notification(ana))
	var ae *plivo.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || !ae.Retryable() {
		t.Fatalf("err %v", err)
	}
	checkClean(t, err.Error())
	n := notification(ana)
	n.Token = ""
	if _, err := s.call.Notify(ctxT(t), n); err == nil {
		t.Fatal("a call without a token was placed")
	}
	if _, err := s.call.Notify(ctxT(t), notification("351912345678")); err == nil {
		t.Fatal("a call to a number that is not E.164 was placed")
	} else {
		checkClean(t, err.Error())
	}
	if len(s.fake.Calls()) != 0 {
		t.Fatal("placed")
	}
}

// answered places a call and fetches its answer document.
func answered(t *testing.T, s setup) (plivotest.Call, *plivotest.Document) {
	t.Helper()
	c := placed(t, s)
	r := s.drv.Answer(c)
	if r.Status != 200 || r.Doc == nil {
		t.Fatalf("answer: %d %s", r.Status, r.Body)
	}
	return c, r.Doc
}

func TestCallDocumentRendersScript(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	_, doc := answered(t, s)
	start := voice.Start(notification(ana))
	// Silence first, while machine detection listens; then the script.
	if doc.Wait < 6 || len(doc.Says) != 1 || doc.Says[0] != start.Say || doc.Hangup {
		t.Fatalf("says %q", doc.Says)
	}
	if !strings.Contains(doc.Says[0], "ci-runner") || !strings.Contains(doc.Says[0], "Press 1 to approve") {
		t.Fatalf("script %q", doc.Says[0])
	}
	g := doc.Gather
	action := s.hooks + "/call/gather?" + url.Values{"t": {token}, "s": {start.State}}.Encode()
	if g == nil || g.NumDigits != 1 || g.Action != action || g.Method != "POST" || g.Log != "false" || g.ValidDigits != "0123456789" {
		t.Fatalf("gather %+v", g)
	}
	if doc.Redirect != action {
		t.Fatalf("redirect %q", doc.Redirect)
	}
	if got := s.host.Recalls(); len(got) != 1 || got[0] != token+"|call" {
		t.Fatalf("recalls %q", got)
	}
	checkClean(t, s.logs.String())
}

func TestKeypadDecides(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		digits, choice, said string
	}{
		{"1", channel.ChoiceApprove, "Approved. Thank you, goodbye."},
		{"2", channel.ChoiceDeny, "Denied. Thank you, goodbye."},
	} {
		t.Run(tc.digits, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			c, doc := answered(t, s)
			r := s.drv.Press(c, doc, tc.digits)
			if r.Status != 200 || r.Doc == nil || !r.Doc.Hangup || len(r.Doc.Says) != 1 || r.Doc.Says[0] != tc.said || r.Doc.Gather != nil {
				t.Fatalf("reply %d %s", r.Status, r.Body)
			}
			want := channel.Answer{Token: token, Choice: tc.choice, Channel: "call", From: ana}
			if got := s.host.Answers(); len(got) != 1 || got[0] != want {
				t.Fatalf("answers %+v", got)
			}
			// The same press replayed decides nothing more.
			if r := s.drv.Replay(); r.Status != 403 {
				t.Fatalf("replay %d", r.Status)
			}
			if len(s.host.Answers()) != 1 {
				t.Fatal("replay decided")
			}
			checkClean(t, s.logs.String())
		})
	}
}

func TestKeypadRepeatAndSilence(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c, doc := answered(t, s)
	r := s.drv.Press(c, doc, "9")
	if r.Doc == nil || r.Doc.Gather == nil || r.Doc.Wait != 0 || r.Doc.Says[0] != voice.Start(notification(ana)).Say {
		t.Fatalf("repeat: %s", r.Body)
	}
	doc = r.Doc
	for i := range 2 {
		r = s.drv.Silence(c, doc)
		if r.Doc == nil || r.Doc.Gather == nil || r.Doc.Hangup {
			t.Fatalf("silence %d: %s", i, r.Body)
		}
		doc = r.Doc
	}
	r = s.drv.Silence(c, doc)
	if r.Doc == nil || !r.Doc.Hangup || r.Doc.Says[0] != "Nothing was pressed; nothing was decided. Goodbye." {
		t.Fatalf("third silence: %s", r.Body)
	}
	if len(s.host.Answers()) != 0 {
		t.Fatal("decided")
	}
}

func TestKeypadStepUp(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.host.recall = func(string) (channel.Notification, error) {
		n := notification(ana)
		n.StepUp = true
		return n, nil
	}
	s.host.decide = func(a channel.Answer) error {
		if a.TOTP != "246810" {
			return problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
		}
		return nil
	}
	c, doc := answered(t, s)
	r := s.drv.Press(c, doc, "1")
	if r.Doc == nil || r.Doc.Gather == nil || r.Doc.Gather.NumDigits != 6 || r.Doc.Gather.Log != "false" || !strings.Contains(r.Doc.Says[0], "authenticator") {
		t.Fatalf("TOTP prompt: %s", r.Body)
	}
	if len(s.host.Answers()) != 0 {
		t.Fatal("decided before the code")
	}
	r = s.drv.Press(c, r.Doc, "111111")
	if r.Doc == nil || r.Doc.Gather == nil || !strings.HasPrefix(r.Doc.Says[0], "That code is not valid.") {
		t.Fatalf("wrong code: %s", r.Body)
	}
	r = s.drv.Press(c, r.Doc, "246810")
	if r.Doc == nil || !r.Doc.Hangup || r.Doc.Says[0] != "Approved. Thank you, goodbye." {
		t.Fatalf("right code: %s", r.Body)
	}
	got := s.host.Answers()
	want := channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: "call", From: ana, TOTP: "246810"}
	if len(got) != 2 || got[1] != want {
		t.Fatalf("answers %+v", got)
	}
	if strings.Contains(s.logs.String(), "246810") {
		t.Fatal("the TOTP code was logged")
	}
}

func TestKeypadThreeWrongCodesEndTheCall(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.host.recall = func(string) (channel.Notification, error) {
		n := notification(ana)
		n.StepUp = true
		return n, nil
	}
	s.host.decide = func(channel.Answer) error {
		return problem.New(problem.Forbidden, "invalid_totp", "that code is not valid")
	}
	c, doc := answered(t, s)
	r := s.drv.Press(c, doc, "1")
	for i := range 3 {
		r = s.drv.Press(c, r.Doc, "000000")
		if i < 2 && (r.Doc == nil || r.Doc.Hangup) {
			t.Fatalf("attempt %d ended the call: %s", i, r.Body)
		}
	}
	if r.Doc == nil || !r.Doc.Hangup || !strings.Contains(r.Doc.Says[0], "third wrong code") {
		t.Fatalf("third: %s", r.Body)
	}
	if len(s.host.Answers()) != 3 {
		t.Fatalf("answers %d", len(s.host.Answers()))
	}
	if got := s.host.Outcomes(); len(got) != 1 || got[0] != "plivo|"+c.RequestUUID+"|stepup_failed" {
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
		{"already final", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via sms."),
			"This is Ony. This handoff was already approved by Ana via sms. Goodbye."},
		{"invalid token", problem.New(problem.Invalid, "invalid_decision_token", "that link is not valid"),
			"This is Ony. There is nothing to decide on this call any more. Goodbye."},
		{"store down", errors.New("database down"), "This is Ony. There is nothing to decide on this call any more. Goodbye."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.host.recall = func(string) (channel.Notification, error) { return channel.Notification{}, tc.err }
			_, doc := answered(t, s)
			if !doc.Hangup || doc.Gather != nil || len(doc.Says) != 1 || doc.Says[0] != tc.say {
				t.Fatalf("doc %+v", doc)
			}
			if len(s.host.Answers()) != 0 {
				t.Fatal("decided")
			}
		})
	}
}

func TestCallMachineHangsUp(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := placed(t, s)
	if r := s.drv.Machine(c, false); r.Status != 200 || len(s.host.Reports()) != 0 || len(s.fake.HungUp()) != 0 {
		t.Fatalf("a person: %d, %+v", r.Status, s.host.Reports())
	}
	if r := s.drv.Machine(c, true); r.Status != 200 {
		t.Fatalf("machine: %d %s", r.Status, r.Body)
	}
	if h := s.fake.HungUp(); len(h) != 1 || h[0] != c.CallUUID {
		t.Fatalf("hung up %q", h)
	}
	want := report{"plivo", c.RequestUUID, store.SendNoAnswer}
	if got := s.host.Reports(); len(got) != 1 || got[0] != want {
		t.Fatalf("reports %+v", got)
	}
	// Its hangup, "completed" after the machine picked up, is not a person answering.
	if r := s.drv.Hangup(c, "completed", "NORMAL_CLEARING", true); r.Status != 200 {
		t.Fatalf("hangup %d", r.Status)
	}
	if got := s.host.Reports(); len(got) != 1 {
		t.Fatalf("reports %+v", got)
	}
	// The answer document for a call flagged as a machine says nothing.
	f := url.Values{"CallUUID": {c.CallUUID}, "RequestUUID": {c.RequestUUID}, "Machine": {"true"}}
	if r := s.drv.Post(c.AnswerURL, f); r.Doc == nil || !r.Doc.Hangup || len(r.Doc.Says) != 0 {
		t.Fatalf("machine document %s", r.Body)
	}
	if len(s.host.Recalls()) != 0 {
		t.Fatal("recalled for a machine")
	}
}

func TestCallHangupStates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, cause string
		answered      bool
		want          store.SendState
	}{
		{"completed", "NORMAL_CLEARING", true, store.SendAnswered},
		{"completed", "NORMAL_CLEARING", false, store.SendNoAnswer},
		{"busy", "USER_BUSY", false, store.SendBusy},
		{"completed", "USER_BUSY", false, store.SendBusy},
		{"no-answer", "NO_ANSWER", false, store.SendNoAnswer},
		{"timeout", "ALLOTTED_TIMEOUT", false, store.SendNoAnswer},
		{"cancel", "ORIGINATOR_CANCEL", false, store.SendNoAnswer},
		{"failed", "UNALLOCATED_NUMBER", false, store.SendFailed},
	} {
		t.Run(tc.status+"/"+tc.cause, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			c := placed(t, s)
			if r := s.drv.Hangup(c, tc.status, tc.cause, tc.answered); r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			want := report{"plivo", c.RequestUUID, tc.want}
			if got := s.host.Reports(); len(got) != 1 || got[0] != want {
				t.Fatalf("reports %+v, want %+v", got, want)
			}
		})
	}
}

func TestCallHangupStoreErrors(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c := placed(t, s)
	s.host.report = func(string) error { return store.ErrNotFound }
	if r := s.drv.Hangup(c, "busy", "USER_BUSY", false); r.Status != 200 {
		t.Fatalf("unknown call: %d", r.Status)
	}
	s.host.report = func(string) error { return errors.New("database down") }
	if r := s.drv.Hangup(c, "busy", "USER_BUSY", false); r.Status != 500 {
		t.Fatalf("store down: %d", r.Status)
	}
	if r := s.drv.Post(c.HangupURL, url.Values{"CallStatus": {"busy"}}); r.Status != 400 {
		t.Fatalf("no request uuid: %d", r.Status)
	}
}

// Every call route refuses what is not Plivo's, before acting.
func TestCallRoutesRefuseWithoutEffect(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	c, doc := answered(t, s)
	otherToken := s.hooks + "/call/gather?" + url.Values{"t": {"ony_dt_another"}, "s": {"m0"}}.Encode()
	laterState := s.hooks + "/call/gather?" + url.Values{"t": {token}, "s": {"t0"}}.Encode()
	recalls, onces := len(s.host.Recalls()), s.host.Onces()
	for _, tc := range []struct {
		name   string
		do     func() plivotest.Reply
		status int
	}{
		{"answer, wrong key", func() plivotest.Reply { return s.drv.Answer(c, plivotest.WrongKey("nope-nope-nope")) }, 403},
		{"answer, no signature", func() plivotest.Reply { return s.drv.Answer(c, plivotest.NoSignature()) }, 401},
		{"press, wrong key", func() plivotest.Reply { return s.drv.Press(c, doc, "1", plivotest.WrongKey("nope-nope-nope")) }, 403},
		{"press, no nonce", func() plivotest.Reply { return s.drv.Press(c, doc, "1", plivotest.NoNonce()) }, 401},
		// The URL's token swapped for another: the signature covered the real one.
		{"press, token swapped", func() plivotest.Reply {
			return s.drv.Post(otherToken, url.Values{"Digits": {"1"}}, plivotest.SignedFor(doc.Gather.Action))
		}, 403},
		// A stale state (the menu's) pushed onto the TOTP step.
		{"press, state swapped", func() plivotest.Reply {
			return s.drv.Post(laterState, url.Values{"Digits": {"123456"}}, plivotest.SignedFor(doc.Gather.Action))
		}, 403},
		{"silence, wrong key", func() plivotest.Reply { return s.drv.Silence(c, doc, plivotest.WrongKey("nope-nope-nope")) }, 403},
		{"hangup, wrong key", func() plivotest.Reply {
			return s.drv.Hangup(c, "busy", "USER_BUSY", false, plivotest.WrongKey("nope-nope-nope"))
		}, 403},
		{"machine, wrong key", func() plivotest.Reply { return s.drv.Machine(c, true, plivotest.WrongKey("nope-nope-nope")) }, 403},
		{"machine, no signature", func() plivotest.Reply { return s.drv.Machine(c, true, plivotest.NoSignature()) }, 401},
	} {
		if r := tc.do(); r.Status != tc.status || r.Doc != nil {
			t.Errorf("%s: status %d, want %d", tc.name, r.Status, tc.status)
		}
	}
	if len(s.host.Answers()) != 0 || len(s.host.Reports()) != 0 || len(s.host.Recalls()) != recalls ||
		s.host.Onces() != onces || len(s.fake.HungUp()) != 0 {
		t.Fatal("a refused request reached Ony or Plivo")
	}
}

func TestCallMalformedQuery(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for _, q := range []string{"", "t=", "t=a&t=b", "t=" + token + "&s=zz", "t=" + token + "&s=m0&s=m1", "t=%zz"} {
		if r := s.drv.Post(s.hooks+"/call/gather?"+q, url.Values{"Digits": {"1"}}); r.Status != 400 {
			t.Errorf("%q: status %d", q, r.Status)
		}
	}
	if r := s.drv.Post(s.hooks+"/call/gather?t="+token+"&s=m0", url.Values{"Digits": {"1<script>"}}); r.Status != 400 {
		t.Errorf("bad digits: %d", r.Status)
	}
	if len(s.host.Answers()) != 0 || len(s.host.Recalls()) != 0 {
		t.Fatal("acted")
	}
}
