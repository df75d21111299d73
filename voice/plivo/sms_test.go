package plivo_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/plivo/plivotest"
)

func TestSMSNotifySends(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	n := notification(ana)
	d, err := s.sms.Notify(ctxT(t), n)
	if err != nil {
		t.Fatal(err)
	}
	sent := s.fake.SMS()
	if len(sent) != 1 {
		t.Fatalf("sent %d", len(sent))
	}
	m := sent[0]
	if d.Ref != m.UUID || d.State != store.SendSent {
		t.Fatalf("delivery %+v, message %s", d, m.UUID)
	}
	if m.Src != "14155550100" || m.Dst != "351912345678" || m.Text != voice.SMSBody(n) || m.Method != "POST" ||
		m.URL != s.hooks+"/sms/status" {
		t.Fatalf("message %+v", m)
	}
	if !strings.Contains(m.Text, "Y "+voice.SMSCode(n)) {
		t.Fatalf("text without the code: %q", m.Text)
	}
	if s.sms.Kind() != "sms" || s.sms.Provider() != "plivo" || s.call.Kind() != "call" || s.call.Provider() != "plivo" {
		t.Fatal("kind or provider")
	}
}

func TestSendSMS(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	if err := s.p.SendSMS(ctxT(t), ana, "ony: your verification code is 123456."); err != nil {
		t.Fatal(err)
	}
	if m := s.fake.SMS(); len(m) != 1 || m[0].URL != "" || m[0].Dst != "351912345678" || m[0].Text != "ony: your verification code is 123456." {
		t.Fatalf("sent %+v", m)
	}
	if err := s.p.SendSMS(ctxT(t), "0912345678", "x"); err == nil || strings.Contains(err.Error(), "0912345678") {
		t.Fatalf("bad number: %v", err)
	}
}

// The engine fails over on any error; the error must say what failed and never carry the auth token
// or the full number.
func TestSMSProviderErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		status    int
		retryable bool
	}{
		{"server error", 500, true},
		{"unavailable", 503, true},
		{"rate limited", 429, true},
		{"bad request", 400, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			s.fake.Fail("Message", 1, tc.status)
			_, err := s.sms.Notify(ctxT(t), notification(ana))
			var ae *plivo.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Retryable() != tc.retryable {
				t.Fatalf("err %v", err)
			}
			checkClean(t, err.Error())
			if len(s.fake.SMS()) != 0 {
				t.Fatal("sent anyway")
			}
			// The next attempt (the engine's retry) goes through.
			if _, err := s.sms.Notify(ctxT(t), notification(ana)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSMSWrongCredentials(t *testing.T) {
	t.Parallel()
	fake := plivotest.New(t, authID, authToken)
	p, err := plivo.New(plivo.Config{AuthID: authID, AuthToken: "wrong-token-123", From: from, APIURL: fake.URL(), PublicURL: "https://ony.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.SMS().Notify(ctxT(t), notification(ana))
	var ae *plivo.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || strings.Contains(err.Error(), "wrong-token-123") {
		t.Fatalf("err %v", err)
	}
	checkClean(t, err.Error())
}

func TestSMSUnreachableProvider(t *testing.T) {
	t.Parallel()
	p, err := plivo.New(plivo.Config{AuthID: authID, AuthToken: authToken, From: from, APIURL: "http://127.0.0.1:1", PublicURL: "https://ony.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.SMS().Notify(ctxT(t), notification(ana))
	if err == nil {
		t.Fatal("no error")
	}
	checkClean(t, err.Error())
	if strings.Contains(err.Error(), authID) {
		t.Fatalf("error quotes the account URL: %v", err)
	}
}

// checkClean fails when s holds a secret, a full phone number or the decision token.
func checkClean(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{authToken, token, ana, strings.TrimPrefix(ana, "+"), mallory, strings.TrimPrefix(mallory, "+")} {
		if strings.Contains(s, secret) {
			t.Fatalf("%q leaks %q", s, secret)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	ok := plivo.Config{AuthID: authID, AuthToken: authToken, From: from, PublicURL: "https://ony.example.com"}
	for name, mod := range map[string]func(*plivo.Config){
		"no auth id":       func(c *plivo.Config) { c.AuthID = "" },
		"lower auth id":    func(c *plivo.Config) { c.AuthID = "maoduzytq0y2fmyjblow" },
		"no token":         func(c *plivo.Config) { c.AuthToken = "" },
		"local from":       func(c *plivo.Config) { c.From = "4155550100" },
		"no public URL":    func(c *plivo.Config) { c.PublicURL = "" },
		"public URL query": func(c *plivo.Config) { c.PublicURL = "https://ony.example.com/?a=b" },
		"ftp API":          func(c *plivo.Config) { c.APIURL = "ftp://api.plivo.com" },
	} {
		c := ok
		mod(&c)
		if _, err := plivo.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			checkClean(t, err.Error())
		}
	}
	if _, err := plivo.New(ok); err != nil {
		t.Fatal(err)
	}
}

// smsHost answers like Ony: a code decides only from the number it was sent to.
func smsHost(h *fakeHost) {
	code := voice.SMSCode(notification(ana))
	h.decide = func(a channel.Answer) error {
		if a.From != ana || a.Code != code {
			return problem.New(problem.Invalid, "invalid_code", "that code does not match a message Ony sent to this number")
		}
		return nil
	}
}

func TestInboundReplyDecides(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification(ana))
	for _, tc := range []struct {
		text, choice, reply string
	}{
		{"Y " + code, channel.ChoiceApprove, "ony: approved, thank you."},
		{"n" + code, channel.ChoiceDeny, "ony: denied, thank you."},
		{" yes, " + code + "!", channel.ChoiceApprove, "ony: approved, thank you."},
	} {
		t.Run(tc.text, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			smsHost(s.host)
			r, _ := s.drv.InboundSMS(s.hooks+"/sms", ana, from, tc.text)
			if r.Status != 200 || r.Doc == nil || r.Doc.Message == nil {
				t.Fatalf("reply %d %s", r.Status, r.Body)
			}
			if m := r.Doc.Message; m.Text != tc.reply || m.Dst != "351912345678" || m.Src != "14155550100" || m.Type != "sms" {
				t.Fatalf("answer %+v", m)
			}
			want := channel.Answer{Code: code, Choice: tc.choice, Channel: "sms", From: ana}
			if got := s.host.Answers(); len(got) != 1 || got[0] != want {
				t.Fatalf("answers %+v", got)
			}
			checkClean(t, s.logs.String())
		})
	}
}

func TestInboundNotAReplyGetsHelp(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	for _, text := range []string{"hello", "Y", "Y 12345", "maybe 1234", ""} {
		r, _ := s.drv.InboundSMS(s.hooks+"/sms", ana, from, text)
		if r.Status != 200 || r.Doc == nil || r.Doc.Message == nil || r.Doc.Message.Text != voice.SMSHelp {
			t.Fatalf("%q: reply %d %s", text, r.Status, r.Body)
		}
	}
	if len(s.host.Answers()) != 0 {
		t.Fatalf("decided: %+v", s.host.Answers())
	}
}

// A reply from another number reaches Ony, which refuses it; the refusal is texted back, short and GSM-7.
func TestInboundRefusalIsTextedBack(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	smsHost(s.host)
	code := voice.SMSCode(notification(ana))
	r, _ := s.drv.InboundSMS(s.hooks+"/sms", mallory, from, "Y "+code)
	if r.Doc == nil || r.Doc.Message == nil || r.Doc.Message.Text != "ony: that code does not match a message Ony sent to this number" {
		t.Fatalf("reply %s", r.Body)
	}
	if got := s.host.Answers(); len(got) != 1 || got[0].From != mallory {
		t.Fatalf("answers %+v", got)
	}
	// A long, non-GSM problem message is folded and cut to one segment.
	s.host.decide = func(channel.Answer) error {
		return problem.New(problem.Conflict, "already_final", "this handoff was already approved by Ana “the boss” via call — %s", strings.Repeat("x", 300))
	}
	r, _ = s.drv.InboundSMS(s.hooks+"/sms", ana, from, "Y "+code)
	txt := r.Doc.Message.Text
	if len([]rune(txt)) > 160 || voice.GSM(txt) != txt || !strings.HasPrefix(txt, "ony: this handoff was already approved by Ana \"the boss\"") {
		t.Fatalf("reply %q", txt)
	}
	// An error that is not a problem is not quoted.
	s.host.decide = func(channel.Answer) error { return errors.New("db down at 10.0.0.1 " + authToken) }
	r, _ = s.drv.InboundSMS(s.hooks+"/sms", ana, from, "N "+code)
	if txt := r.Doc.Message.Text; strings.Contains(txt, "db down") || !strings.Contains(txt, "console") {
		t.Fatalf("reply %q", txt)
	}
}

// Anything that is not Plivo's, or that Plivo sent before, changes nothing.
func TestInboundRefusedWithoutEffect(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification(ana))
	for _, tc := range []struct {
		name   string
		opts   []plivotest.Option
		status int
	}{
		{"wrong key", []plivotest.Option{plivotest.WrongKey("another-token-xyz")}, 403},
		{"no signature", []plivotest.Option{plivotest.NoSignature()}, 401},
		{"no nonce", []plivotest.Option{plivotest.NoNonce()}, 401},
		{"garbage signature", []plivotest.Option{plivotest.Header("not-a-signature")}, 403},
		{"signed for another route", []plivotest.Option{plivotest.SignedFor("http://127.0.0.1/hooks/plivo/sms/status")}, 403},
		{"signed for another host", []plivotest.Option{plivotest.SignedFor("https://evil.example.com/hooks/plivo/sms")}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			r, _ := s.drv.InboundSMS(s.hooks+"/sms", ana, from, "Y "+code, tc.opts...)
			if r.Status != tc.status || r.Doc != nil {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if len(s.host.Answers()) != 0 || s.host.Onces() != 0 {
				t.Fatal("a refused request reached Ony")
			}
		})
	}
}

func TestInboundSignatureRotation(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	r, _ := s.drv.InboundSMS(s.hooks+"/sms", ana, from, "Y "+voice.SMSCode(notification(ana)), plivotest.AlsoOtherSignature())
	if r.Status != 200 || len(s.host.Answers()) != 1 {
		t.Fatalf("status %d, answers %d", r.Status, len(s.host.Answers()))
	}
}

func TestInboundReplayAndRedeliveryDecideOnce(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	code := voice.SMSCode(notification(ana))
	if r, _ := s.drv.InboundSMS(s.hooks+"/sms", ana, from, "Y "+code); r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	// A captured request sent again: same nonce, same signature.
	if r := s.drv.Replay(); r.Status != 403 {
		t.Fatalf("replay: status %d", r.Status)
	}
	// Plivo redelivering the same message (a new nonce, the same MessageUUID): acknowledged, silent.
	form := map[string][]string{"From": {"351912345678"}, "To": {"14155550100"}, "Text": {"Y " + code}, "Type": {"sms"}, "MessageUUID": {"dup-1"}}
	if r := s.drv.Post(s.hooks+"/sms", form); r.Status != 200 || r.Doc.Message == nil {
		t.Fatalf("first: %d %s", r.Status, r.Body)
	}
	if r := s.drv.Post(s.hooks+"/sms", form); r.Status != 200 || r.Doc == nil || r.Doc.Message != nil {
		t.Fatalf("redelivery: %d %s", r.Status, r.Body)
	}
	if got := s.host.Answers(); len(got) != 2 {
		t.Fatalf("answers %+v", got)
	}
}

func TestInboundMalformed(t *testing.T) {
	t.Parallel()
	for name, form := range map[string]map[string][]string{
		"no message uuid":  {"From": {"351912345678"}, "To": {"14155550100"}, "Text": {"Y 1234"}},
		"sender is a word": {"From": {"PLIVO"}, "To": {"14155550100"}, "Text": {"Y 1234"}, "MessageUUID": {"m1"}},
		"mms":              {"From": {"351912345678"}, "To": {"14155550100"}, "Text": {"Y 1234"}, "MessageUUID": {"m1"}, "Type": {"mms"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			if r := s.drv.Post(s.hooks+"/sms", form); r.Status != 400 {
				t.Fatalf("status %d", r.Status)
			}
			if len(s.host.Answers()) != 0 {
				t.Fatal("decided")
			}
		})
	}
}

func TestSMSStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status string
		want   store.SendState // "" = nothing reported
	}{
		{"delivered", store.SendDelivered},
		{"failed", store.SendFailed},
		{"undelivered", store.SendFailed},
		{"rejected", store.SendFailed},
		{"queued", ""},
		{"sent", ""},
	} {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t)
			d, err := s.sms.Notify(ctxT(t), notification(ana))
			if err != nil {
				t.Fatal(err)
			}
			if r := s.drv.SMSStatus(s.fake.SMS()[0], tc.status); r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			got := s.host.Reports()
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("reported %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0] != (report{"plivo", d.Ref, tc.want}) {
				t.Fatalf("reported %+v", got)
			}
		})
	}
}

func TestSMSStatusRefusals(t *testing.T) {
	t.Parallel()
	s := newSetup(t)
	if _, err := s.sms.Notify(ctxT(t), notification(ana)); err != nil {
		t.Fatal(err)
	}
	m := s.fake.SMS()[0]
	if r := s.drv.SMSStatus(m, "delivered", plivotest.WrongKey("nope-nope-nope")); r.Status != 403 {
		t.Fatalf("wrong key: %d", r.Status)
	}
	if r := s.drv.SMSStatus(m, "delivered", plivotest.NoSignature()); r.Status != 401 {
		t.Fatalf("no signature: %d", r.Status)
	}
	if len(s.host.Reports()) != 0 {
		t.Fatal("reported")
	}
	// Unknown message: acknowledged; a store failure: 500 so Plivo retries.
	s.host.report = func(string) error { return store.ErrNotFound }
	if r := s.drv.SMSStatus(m, "delivered"); r.Status != 200 {
		t.Fatalf("unknown: %d", r.Status)
	}
	s.host.report = func(string) error { return errors.New("database is down") }
	if r := s.drv.SMSStatus(m, "delivered"); r.Status != 500 {
		t.Fatalf("store down: %d", r.Status)
	}
	if r := s.drv.Post(m.URL, map[string][]string{"Status": {"delivered"}}); r.Status != 400 {
		t.Fatalf("no uuid: %d", r.Status)
	}
}

// Plivo's error text may quote the number; it reaches the error masked.
func TestProviderErrorTextIsMasked(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"api_id":"x","error":"351912345678 is not a valid destination"}`,
		`{"api_id":"x","error":{"dst":"+351912345678 is not a valid number"}}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		p, err := plivo.New(plivo.Config{AuthID: authID, AuthToken: authToken, From: from, APIURL: srv.URL, PublicURL: "https://ony.example.com"})
		if err != nil {
			t.Fatal(err)
		}
		err = p.SendSMS(ctxT(t), ana, "hi")
		var ae *plivo.APIError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), "+3•••••••5678") {
			t.Fatalf("err %v", err)
		}
		checkClean(t, err.Error())
	}
}
