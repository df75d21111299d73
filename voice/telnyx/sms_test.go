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

func TestSMSNotifySendsTheBody(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	n := notification(false)
	d, err := s.p.SMS().Notify(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	msgs := s.fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("messages %+v", msgs)
	}
	m := msgs[0]
	if m.From != from || m.To != callee || m.Text != voice.SMSBody(n) || m.WebhookURL != public+"/hooks/telnyx/sms" {
		t.Fatalf("message %+v", m)
	}
	if !strings.Contains(m.Text, "Y "+voice.SMSCode(n)) {
		t.Fatalf("text without the code: %q", m.Text)
	}
	if d.Ref != m.ID || d.State != store.SendSent {
		t.Fatalf("delivery %+v", d)
	}
}

func TestSMSReplyDecides(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, choice, answer string
	}{
		{"yes", "Y 4821", channel.ChoiceApprove, "ony: approved, thank you."},
		{"no, lower case, joined", "n4821", channel.ChoiceDeny, "ony: denied, thank you."},
		{"spelled out", " Yes, 4821! ", channel.ChoiceApprove, "ony: approved, thank you."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			if st := s.driver.Post(t, s.url+"/sms", s.driver.MessageReceived("in-1", callee, from, tc.text), telnyxtest.Good); st != 200 {
				t.Fatalf("status %d", st)
			}
			want := channel.Answer{Code: "4821", Choice: tc.choice, Channel: "sms", From: callee}
			if got := s.host.Answers(); len(got) != 1 || got[0] != want {
				t.Fatalf("answers %+v", got)
			}
			msgs := s.fake.Messages()
			if len(msgs) != 1 || msgs[0].To != callee || msgs[0].From != from || msgs[0].Text != tc.answer || msgs[0].WebhookURL != "" {
				t.Fatalf("replies %+v", msgs)
			}
			if logs := s.logs.String(); strings.Contains(logs, callee) || strings.Contains(logs, "4821") {
				t.Fatalf("logs leak: %s", logs)
			}
		})
	}
}

func TestSMSReplyThatIsNotOneGetsHelp(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for i, text := range []string{"hello", "Y", "Y 48211", "maybe 4821", ""} {
		body := s.driver.MessageReceived("in-"+string(rune('a'+i)), callee, from, text)
		if st := s.driver.Post(t, s.url+"/sms", body, telnyxtest.Good); st != 200 {
			t.Fatalf("%q: status %d", text, st)
		}
	}
	if got := s.host.Answers(); len(got) != 0 {
		t.Fatalf("decided on %+v", got)
	}
	msgs := s.fake.Messages()
	if len(msgs) != 5 {
		t.Fatalf("replies %d", len(msgs))
	}
	for _, m := range msgs {
		if m.Text != voice.SMSHelp || m.To != callee {
			t.Fatalf("reply %+v", m)
		}
	}
}

func TestSMSRefusalIsTextedBack(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"problem", problem.New(problem.Invalid, "invalid_code", "that code does not match a message Ony sent to this number"),
			"ony: that code does not match a message Ony sent to this number"},
		{"already final", problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call"),
			"ony: this handoff was already approved by Ana via call"},
		{"long problem is cut to a segment", problem.New(problem.Invalid, "x", "%s", strings.Repeat("word ", 60)), ""},
		{"internal error is not shown", errors.New("pq: connection refused at 10.0.0.1"), "ony: Ony could not record that. Decide in the console."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.host.decide = func(channel.Answer) (store.Handoff, error) { return store.Handoff{}, tc.err }
			if st := s.driver.Post(t, s.url+"/sms", s.driver.MessageReceived("in-1", other, from, "Y 4821"), telnyxtest.Good); st != 200 {
				t.Fatalf("status %d", st)
			}
			if a := s.host.Answers(); len(a) != 1 || a[0].From != other {
				t.Fatalf("answers %+v", a)
			}
			msgs := s.fake.Messages()
			if len(msgs) != 1 || msgs[0].To != other {
				t.Fatalf("replies %+v", msgs)
			}
			if tc.want != "" && msgs[0].Text != tc.want {
				t.Fatalf("reply %q, want %q", msgs[0].Text, tc.want)
			}
			if n := len([]rune(msgs[0].Text)); n > 160 || voice.GSM(msgs[0].Text) != msgs[0].Text {
				t.Fatalf("reply is not one GSM-7 segment (%d): %q", n, msgs[0].Text)
			}
		})
	}
}

func TestSMSWebhookRefusesWithoutActing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		how    telnyxtest.Sig
		body   func(d *telnyxtest.Driver) []byte
		status int
	}{
		{"missing signature", telnyxtest.Missing, nil, 401},
		{"no timestamp", telnyxtest.NoTimestamp, nil, 401},
		{"wrong key", telnyxtest.WrongKey, nil, 403},
		{"stale", telnyxtest.Stale, nil, 403},
		{"from the future", telnyxtest.Future, nil, 403},
		{"tampered body", telnyxtest.Tampered, nil, 403},
		{"malformed JSON", telnyxtest.Good, func(*telnyxtest.Driver) []byte { return []byte(`{"data":`) }, 400},
		{"no event id", telnyxtest.Good, func(*telnyxtest.Driver) []byte {
			return []byte(`{"data":{"event_type":"message.received","payload":{"id":"m","text":"Y 4821","from":{"phone_number":"+351912344821"}}}}`)
		}, 400},
		{"payload not an object", telnyxtest.Good, func(*telnyxtest.Driver) []byte {
			return []byte(`{"data":{"id":"e1","event_type":"message.received","payload":"Y 4821"}}`)
		}, 400},
		{"message without id", telnyxtest.Good, func(d *telnyxtest.Driver) []byte { return d.MessageReceived("", callee, from, "Y 4821") }, 200},
		{"sender not a phone", telnyxtest.Good, func(d *telnyxtest.Driver) []byte { return d.MessageReceived("m1", "ONYBANK", from, "Y 4821") }, 200},
		{"oversized", telnyxtest.Good, func(*telnyxtest.Driver) []byte {
			return append([]byte(`{"data":{"id":"e1","event_type":"message.received","payload":{"text":"`), make([]byte, 1<<20)...)
		}, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			body := s.driver.MessageReceived("in-1", callee, from, "Y 4821")
			if tc.body != nil {
				body = tc.body(s.driver)
			}
			if st := s.driver.Post(t, s.url+"/sms", body, tc.how); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if len(s.host.Answers()) != 0 || len(s.fake.Messages()) != 0 || len(s.host.Reports()) != 0 {
				t.Fatalf("acted: %+v %+v", s.host.Answers(), s.fake.Messages())
			}
			if tc.status != 200 && s.host.Onces() != 0 {
				t.Fatal("a refused request reached dedupe")
			}
		})
	}
}

func TestSMSReplayDecidesOnce(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	body := s.driver.MessageReceived("in-1", callee, from, "Y 4821")
	for range 2 {
		if st := s.driver.Post(t, s.url+"/sms", body, telnyxtest.Good); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	// Redelivered under a new event id, the message id still gives it away.
	if st := s.driver.Post(t, s.url+"/sms", s.driver.MessageReceived("in-1", callee, from, "Y 4821"), telnyxtest.Good); st != 200 {
		t.Fatalf("status %d", st)
	}
	if len(s.host.Answers()) != 1 || len(s.fake.Messages()) != 1 {
		t.Fatalf("answers %+v, replies %+v", s.host.Answers(), s.fake.Messages())
	}
}

func TestSMSDedupeDownStillAnswers(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.host.OnceErr = errors.New("redis down")
	if st := s.driver.Post(t, s.url+"/sms", s.driver.MessageReceived("in-1", callee, from, "N 4821"), telnyxtest.Good); st != 200 {
		t.Fatalf("status %d", st)
	}
	if len(s.host.Answers()) != 1 {
		t.Fatalf("answers %+v", s.host.Answers())
	}
}

func TestSMSStatusReports(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, want string
	}{
		{"delivered", "telnyx|msg-1|delivered"},
		{"delivery_failed", "telnyx|msg-1|failed"},
		{"sending_failed", "telnyx|msg-1|failed"},
		{"delivery_unconfirmed", ""},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			if _, err := s.p.SMS().Notify(ctxT(t), notification(false)); err != nil {
				t.Fatal(err)
			}
			m := s.fake.Messages()[0]
			if st := s.driver.Post(t, s.url+"/sms", s.driver.MessageFinalized(m, tc.status), telnyxtest.Good); st != 200 {
				t.Fatalf("status %d", st)
			}
			got := s.host.Reports()
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Fatalf("reports %v, want %q", got, tc.want)
			}
			if len(s.host.Answers()) != 0 {
				t.Fatal("a status decided")
			}
		})
	}
}

func TestSendSMSErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fail      int
		to        string
		temporary bool
	}{
		{"server error", 500, callee, true},
		{"rate limited", 429, callee, true},
		{"bad number", 0, "+1234", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			if tc.fail != 0 {
				s.fake.Fail(1, tc.fail)
			}
			err := s.p.SendSMS(ctxT(t), tc.to, "ony: your verification code is 123456.")
			if err == nil {
				t.Fatal("no error")
			}
			var ae *telnyx.APIError
			if errors.As(err, &ae) != tc.temporary || tc.temporary && !ae.Temporary() {
				t.Fatalf("error %v (%T)", err, err)
			}
			// A text is never repeated here: the engine fails over instead.
			if tc.fail != 0 && s.fake.Requests() != 1 {
				t.Fatalf("%d requests", s.fake.Requests())
			}
			for _, leak := range []string{apiKey, tc.to, "123456"} {
				if strings.Contains(err.Error(), leak) {
					t.Fatalf("error %q leaks %q", err, leak)
				}
			}
		})
	}
}

func TestAPIErrorMasksNumbers(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	s.fake.Refuse(callee)
	for name, send := range map[string]func() error{
		"sms":  func() error { _, err := s.p.SMS().Notify(ctxT(t), notification(false)); return err },
		"call": func() error { _, err := s.p.Call().Notify(ctxT(t), notification(false)); return err },
	} {
		err := send()
		var ae *telnyx.APIError
		if !errors.As(err, &ae) || ae.Status != 422 || ae.Temporary() {
			t.Fatalf("%s: error %v", name, err)
		}
		if strings.Contains(err.Error(), callee) || !strings.Contains(err.Error(), voice.MaskPhone(callee)) {
			t.Fatalf("%s: error %q does not mask the number", name, err)
		}
	}
	// A wrong key: 401 parsed, the key itself never in the error.
	bad, err := telnyx.New(telnyx.Config{APIKey: "WRONG" + apiKey, PublicKey: s.driver.PublicKey, ConnectionID: "c", From: from,
		APIURL: s.fake.URL(), PublicURL: public})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.SendSMS(ctxT(t), other, "x")
	var ae *telnyx.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Temporary() || strings.Contains(err.Error(), apiKey) {
		t.Fatalf("error %v", err)
	}
}
