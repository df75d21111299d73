package twilio_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/twilio"
	"github.com/ony-ai/ony/voice/twilio/twiliotest"
)

var flavors = []twilio.Flavor{twilio.Twilio, twilio.SignalWire}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	good := twilio.Config{AccountSID: accountSID, AuthToken: authToken, From: ourNumber, PublicURL: public}
	for name, mod := range map[string]func(*twilio.Config){
		"no sid":                   func(c *twilio.Config) { c.AccountSID = "" },
		"no token":                 func(c *twilio.Config) { c.AuthToken = "" },
		"from not E.164":           func(c *twilio.Config) { c.From = "5005550006" },
		"no public URL":            func(c *twilio.Config) { c.PublicURL = "" },
		"public URL with a query":  func(c *twilio.Config) { c.PublicURL = public + "/?a=1" },
		"API URL not http":         func(c *twilio.Config) { c.APIURL = "ftp://api.twilio.com" },
		"API URL with credentials": func(c *twilio.Config) { c.APIURL = "https://u:" + authToken + "@api.twilio.com" },
		"unknown flavor":           func(c *twilio.Config) { c.Flavor = 7 },
		"signalwire, no space":     func(c *twilio.Config) { c.Flavor, c.SigningKey = twilio.SignalWire, signingKey },
		"signalwire, no key": func(c *twilio.Config) {
			c.Flavor, c.APIURL = twilio.SignalWire, "https://x.signalwire.com/api/laml"
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			mod(&cfg)
			_, err := twilio.New(cfg)
			if err == nil {
				t.Fatal("New accepted it")
			}
			if strings.Contains(err.Error(), authToken) {
				t.Fatalf("error quotes the token: %v", err)
			}
		})
	}
	if p, err := twilio.New(good); err != nil || p.Name() != "twilio" || p.SMS().Provider() != "twilio" || p.Call().Kind() != "call" {
		t.Fatalf("good config: %v", err)
	}
}

func TestSMSNotify(t *testing.T) {
	t.Parallel()
	for _, fl := range flavors {
		t.Run(fmt.Sprint(fl), func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, fl)
			n := notification()
			d, err := s.sms.Notify(ctxT(t), n)
			if err != nil {
				t.Fatal(err)
			}
			ms := s.fake.Messages()
			if len(ms) != 1 {
				t.Fatalf("%d messages", len(ms))
			}
			m := ms[0]
			want := twiliotest.Message{SID: m.SID, To: callee, From: ourNumber, Body: voice.SMSBody(n), StatusCallback: s.hooks + "/sms/status"}
			if m != want || d.Ref != m.SID || d.State != store.SendSent {
				t.Fatalf("sent %+v, delivery %+v", m, d)
			}
			if !strings.Contains(m.Body, "Y "+voice.SMSCode(n)) || strings.Contains(m.Body, token) {
				t.Fatalf("body %q", m.Body)
			}
			if s.sms.Kind() != "sms" || s.sms.Provider() != s.name || s.sms.Update(ctxT(t), channel.Update{}) != nil {
				t.Fatal("kind, provider or update")
			}
		})
	}
}

func TestSendSMS(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	if err := s.p.SendSMS(ctxT(t), callee, "ony: your verification code is 123456."); err != nil {
		t.Fatal(err)
	}
	if m := s.fake.Messages(); len(m) != 1 || m[0].Body != "ony: your verification code is 123456." || m[0].StatusCallback != "" {
		t.Fatalf("messages %+v", m)
	}
	for _, bad := range []struct{ to, body string }{{"12345", "x"}, {callee, ""}, {callee, strings.Repeat("x", 1601)}} {
		if err := s.p.SendSMS(ctxT(t), bad.to, bad.body); err == nil {
			t.Fatalf("SendSMS(%q, %d chars) succeeded", bad.to, len(bad.body))
		}
	}
	if len(s.fake.Messages()) != 1 {
		t.Fatal("a refused text reached the API")
	}
}

func TestNotifyErrorsFailOverWithoutSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		status    int
		temporary bool
	}{{"server error", 500, true}, {"unavailable", 503, true}, {"rate limited", 429, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.Twilio)
			s.fake.Fail(2, tc.status)
			for _, ch := range []channel.Channel{s.sms, s.call} {
				_, err := ch.Notify(ctxT(t), notification())
				var ae *twilio.APIError
				if !errors.As(err, &ae) || ae.Status != tc.status || ae.Temporary() != tc.temporary {
					t.Fatalf("%s: err %v", ch.Kind(), err)
				}
				noSecrets(t, err.Error())
			}
			// Once the provider recovers, the same notification goes through.
			if _, err := s.sms.Notify(ctxT(t), notification()); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("refused number", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, twilio.Twilio)
		n := notification()
		n.Recipient.Address = "+14155550123"
		// Another account's token: refused, not worth a retry, and the error quotes neither.
		p, err := twilio.New(twilio.Config{AccountSID: accountSID, AuthToken: "wrong-token", From: ourNumber, PublicURL: public, APIURL: s.fake.URL()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.SMS().Notify(ctxT(t), n)
		var ae *twilio.APIError
		if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != 20003 || ae.Temporary() {
			t.Fatalf("err %v", err)
		}
		noSecrets(t, err.Error())
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		p, err := twilio.New(twilio.Config{AccountSID: accountSID, AuthToken: authToken, From: ourNumber, PublicURL: public, APIURL: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Call().Notify(ctxT(t), notification())
		if err == nil {
			t.Fatal("no error")
		}
		noSecrets(t, err.Error())
	})
}

func TestAPIErrorMasksNumbers(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	// A From the account does not own is refused with a message quoting it, as Twilio does.
	s.fake.OwnNumbers(ourNumber)
	p, err := twilio.New(twilio.Config{AccountSID: accountSID, AuthToken: authToken, From: "+10000000", PublicURL: public, APIURL: s.fake.URL()})
	if err != nil {
		t.Fatal(err)
	}
	err = p.SendSMS(ctxT(t), callee, "hi")
	var ae *twilio.APIError
	if !errors.As(err, &ae) || ae.Code != 21606 {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(err.Error(), "+10000000") || strings.Contains(err.Error(), callee) || !strings.Contains(ae.Message, "+1•••0000") {
		t.Fatalf("error %q does not mask the numbers", err)
	}
}

func TestSMSReplyDecides(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification())
	for _, fl := range flavors {
		for _, tc := range []struct{ body, choice, answer string }{
			{"Y " + code, channel.ChoiceApprove, "ony: approved, thank you."},
			{"n" + code, channel.ChoiceDeny, "ony: denied, thank you."},
			{" yes, " + code + "!", channel.ChoiceApprove, "ony: approved, thank you."},
		} {
			t.Run(fmt.Sprint(fl, tc.body), func(t *testing.T) {
				t.Parallel()
				s := newSetup(t, fl)
				res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", callee, ourNumber, tc.body)
				if res.Status != 200 || len(res.TwiML.Messages) != 1 || res.TwiML.Messages[0] != tc.answer {
					t.Fatalf("answer %d %q", res.Status, res.Body)
				}
				want := channel.Answer{Code: code, Choice: tc.choice, Channel: "sms", From: callee}
				if got := s.host.Answers(); len(got) != 1 || got[0] != want {
					t.Fatalf("answers %+v", got)
				}
				noSecrets(t, s.logs.String())
			})
		}
	}
}

func TestSMSReplyRefusedIsExplained(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification())
	for _, tc := range []struct {
		name, from string
		err        error
		want       string
	}{
		{"another number", "+14155550123", problem.New(problem.Invalid, "invalid_code", "that code does not match a message Ony sent to this number"),
			"ony: that code does not match a message Ony sent to this number"},
		{"already decided", callee, problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana via call"),
			"ony: this handoff was already approved by Ana via call"},
		{"long problem", callee, problem.New(problem.Conflict, "x", "%s", strings.Repeat("é→ ", 100)), ""},
		{"host failure", callee, errors.New("db down"), "ony: that could not be recorded. Please decide in the console."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, twilio.Twilio)
			s.host.decide = func(channel.Answer) error { return tc.err }
			res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", tc.from, ourNumber, "Y "+code)
			if res.Status != 200 || len(res.TwiML.Messages) != 1 {
				t.Fatalf("answer %d %q", res.Status, res.Body)
			}
			msg := res.TwiML.Messages[0]
			if tc.want != "" && msg != tc.want {
				t.Fatalf("answer %q, want %q", msg, tc.want)
			}
			if len([]rune(msg)) > 160 || voice.GSM(msg) != msg {
				t.Fatalf("answer %q is not one GSM-7 segment", msg)
			}
			if got := s.host.Answers(); len(got) != 1 || got[0].From != tc.from {
				t.Fatalf("answers %+v", got)
			}
			noSecrets(t, s.logs.String())
		})
	}
}

func TestSMSNotAReplyGetsHelp(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	for _, body := range []string{"hello", "Y", "Y 12345", "STOP", ""} {
		res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", callee, ourNumber, body)
		if res.Status != 200 || len(res.TwiML.Messages) != 1 || res.TwiML.Messages[0] != voice.SMSHelp {
			t.Fatalf("%q: answer %d %q", body, res.Status, res.Body)
		}
	}
	// A sender that is not a phone number (a short code, an alphanumeric id) gets nothing.
	if res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", "TWILIO", ourNumber, "Y 1234"); res.Status != 200 || len(res.TwiML.Messages) != 0 {
		t.Fatalf("answer %d %q", res.Status, res.Body)
	}
	if len(s.host.Answers()) != 0 {
		t.Fatalf("decided: %+v", s.host.Answers())
	}
}

func TestSMSBadRequestsChangeNothing(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification())
	for _, fl := range flavors {
		for _, tc := range []struct {
			name   string
			opts   []twiliotest.Option
			status int
		}{
			{"no signature", []twiliotest.Option{twiliotest.NoSignature()}, 403},
			{"wrong key", []twiliotest.Option{twiliotest.SignWith("not-the-key")}, 403},
			{"stale key (auth token on signalwire, or rotated)", []twiliotest.Option{twiliotest.SignWith(authToken + "-old")}, 403},
			{"signed for another route", []twiliotest.Option{twiliotest.SignedFor(public + "/hooks/twilio/sms/status")}, 403},
			{"signed for another host", []twiliotest.Option{twiliotest.SignedFor("https://evil.example.com/hooks/twilio/sms")}, 403},
			{"number swapped", []twiliotest.Option{twiliotest.Tamper("From", "+14155550123")}, 403},
			{"body swapped", []twiliotest.Option{twiliotest.Tamper("Body", "N "+code)}, 403},
		} {
			t.Run(fmt.Sprint(fl, tc.name), func(t *testing.T) {
				t.Parallel()
				s := newSetup(t, fl)
				res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", callee, ourNumber, "Y "+code, tc.opts...)
				if res.Status != tc.status {
					t.Fatalf("status %d, want %d", res.Status, tc.status)
				}
				if len(s.host.Answers()) != 0 || s.host.Onces() != 0 || len(s.host.Reports()) != 0 {
					t.Fatal("a refused request reached the host")
				}
				if strings.Contains(res.Body, code) {
					t.Fatal("the refusal echoes the body")
				}
			})
		}
	}
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, twilio.Twilio)
		for _, p := range []url.Values{{"From": {callee}, "Body": {"Y " + code}}, {"MessageSid": {"SM1"}, "Body": {"Y " + code}}} {
			if res := s.drv.Post(t, s.hooks+"/sms", p); res.Status != 400 {
				t.Fatalf("status %d", res.Status)
			}
		}
		if len(s.host.Answers()) != 0 {
			t.Fatal("decided")
		}
	})
	t.Run("oversized", func(t *testing.T) {
		t.Parallel()
		s := newSetup(t, twilio.Twilio)
		_, p := s.drv.InboundSMS(t, s.hooks+"/sms", "TWILIO", ourNumber, "hi")
		p.Set("Body", strings.Repeat("Y ", 40<<10))
		if res := s.drv.Post(t, s.hooks+"/sms", p); res.Status != 413 {
			t.Fatalf("status %d", res.Status)
		}
	})
}

func TestSMSReplayDecidesOnce(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.Twilio)
	code := voice.SMSCode(notification())
	res, p := s.drv.InboundSMS(t, s.hooks+"/sms", callee, ourNumber, "Y "+code)
	if res.Status != 200 {
		t.Fatal(res.Status)
	}
	for range 2 {
		again := s.drv.Post(t, s.hooks+"/sms", p)
		if again.Status != 200 || len(again.TwiML.Messages) != 0 {
			t.Fatalf("replay answered %d %q", again.Status, again.Body)
		}
	}
	if len(s.host.Answers()) != 1 {
		t.Fatalf("decided %d times", len(s.host.Answers()))
	}
}

func TestSMSStatus(t *testing.T) {
	t.Parallel()
	for _, fl := range flavors {
		t.Run(fmt.Sprint(fl), func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, fl)
			if _, err := s.sms.Notify(ctxT(t), notification()); err != nil {
				t.Fatal(err)
			}
			m := s.fake.Messages()[0]
			for _, st := range []string{"queued", "sent", "delivered", "delivered", "undelivered", "failed"} {
				if res := s.drv.SMSStatus(t, m, st); res.Status != 204 {
					t.Fatalf("%s: status %d", st, res.Status)
				}
			}
			// The repeated "delivered" is the same callback posted twice: recorded once.
			want := []report{{s.name, m.SID, store.SendDelivered}, {s.name, m.SID, store.SendFailed}, {s.name, m.SID, store.SendFailed}}
			if got := s.host.Reports(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("reports %+v, want %+v", got, want)
			}
			if res := s.drv.SMSStatus(t, m, "delivered", twiliotest.SignWith("x")); res.Status != 403 {
				t.Fatalf("forged status %d", res.Status)
			}
			s.host.reportErr = store.ErrNotFound
			if res := s.drv.SMSStatus(t, twiliotest.Message{SID: "SMunknown", StatusCallback: m.StatusCallback, To: callee, From: ourNumber}, "delivered"); res.Status != 204 {
				t.Fatalf("unknown message: %d", res.Status)
			}
			noSecrets(t, s.logs.String())
		})
	}
}
