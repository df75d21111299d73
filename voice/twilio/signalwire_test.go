package twilio_test

import (
	"testing"

	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/twilio"
)

// SignalWire signs with the project's signing key, in X-SignalWire-Signature and, for compatibility,
// X-Twilio-Signature; Twilio signs with the auth token, in X-Twilio-Signature only.
func TestSignatureKeysAndHeaders(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(notification())
	for _, tc := range []struct {
		name        string
		flavor      twilio.Flavor
		key, header string
		want        int
	}{
		{"signalwire, signing key, its header", twilio.SignalWire, signingKey, "X-SignalWire-Signature", 200},
		{"signalwire, signing key, twilio's header", twilio.SignalWire, signingKey, "X-Twilio-Signature", 200},
		{"signalwire, API token", twilio.SignalWire, authToken, "X-SignalWire-Signature", 403},
		{"twilio, auth token", twilio.Twilio, authToken, "X-Twilio-Signature", 200},
		{"twilio, signalwire's header", twilio.Twilio, authToken, "X-SignalWire-Signature", 403},
		{"twilio, a signing key", twilio.Twilio, signingKey, "X-Twilio-Signature", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, tc.flavor)
			s.drv.Key, s.drv.Header = tc.key, tc.header
			res, _ := s.drv.InboundSMS(t, s.hooks+"/sms", callee, ourNumber, "N "+code)
			if res.Status != tc.want {
				t.Fatalf("status %d, want %d", res.Status, tc.want)
			}
			if n := len(s.host.Answers()); (n == 1) != (tc.want == 200) {
				t.Fatalf("%d answers", n)
			}
		})
	}
}

func TestSignalWireRoundTrip(t *testing.T) {
	t.Parallel()
	s := newSetup(t, twilio.SignalWire)
	if s.name != "signalwire" || s.sms.Provider() != "signalwire" || s.call.Provider() != "signalwire" {
		t.Fatalf("provider %q", s.name)
	}
	c := placed(t, s)
	if c.URL != public+"/hooks/signalwire/call?t="+token {
		t.Fatalf("document URL %s", c.URL)
	}
	res := press(t, s, c, "2")
	if !res.TwiML.Hangup || res.TwiML.Says[0] != "Denied. Thank you, goodbye." {
		t.Fatalf("%q", res.Body)
	}
	if a := s.host.Answers(); len(a) != 1 || a[0].Channel != "call" || a[0].From != callee {
		t.Fatalf("answers %+v", a)
	}
	// The fake is a SignalWire space: a client pointed at its root (without /api/laml) is refused.
	p, err := twilio.New(twilio.Config{Flavor: twilio.SignalWire, AccountSID: accountSID, AuthToken: authToken, SigningKey: signingKey,
		From: ourNumber, PublicURL: public, APIURL: s.fake.URL()[:len(s.fake.URL())-len("/api/laml")]})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendSMS(ctxT(t), callee, "hi"); err == nil {
		t.Fatal("a request outside /api/laml was accepted")
	}
}
