package telnyx_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// TestVerify is the signature vector: a fixed key (from a seed), timestamp and body, and what
// breaks it.
func TestVerify(t *testing.T) {
	t.Parallel()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	body := []byte(`{"data":{"id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","event_type":"call.answered","payload":{}}}`)
	const ts = "1700000000"
	now := time.Unix(1700000000, 0)
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, append([]byte(ts+"|"), body...)))
	// Ed25519 is deterministic: the vector stays this signature (a change means the signed message changed).
	const want = "r6D++ScPXZLIEIgvIoQfHcFiymcWCMDnwAd91KT939892OW10HfQXZLUguJ5qM5dYxvbghaMDmLaB9yMqh2uCw=="
	if sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
	for _, tc := range []struct {
		name    string
		sig, ts string
		body    []byte
		now     time.Time
		ok      bool
	}{
		{"good", sig, ts, body, now, true},
		{"4m59s late", sig, ts, body, now.Add(4*time.Minute + 59*time.Second), true},
		{"5m early clock", sig, ts, body, now.Add(-5 * time.Minute), true},
		{"stale", sig, ts, body, now.Add(5*time.Minute + time.Second), false},
		{"future", sig, ts, body, now.Add(-5*time.Minute - time.Second), false},
		{"other timestamp", sig, "1700000001", body, now, false},
		{"body changed", sig, ts, append(bytes.Clone(body), ' '), now, false},
		{"no signature", "", ts, body, now, false},
		{"no timestamp", sig, "", body, now, false},
		{"timestamp not a number", sig, "17e8", body, now, false},
		{"signature not base64", "***", ts, body, now, false},
		{"short signature", base64.StdEncoding.EncodeToString([]byte("short")), ts, body, now, false},
	} {
		err := telnyx.Verify(pub, tc.sig, tc.ts, tc.body, tc.now)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if telnyx.Verify(other, sig, ts, body, now) == nil {
		t.Error("another key verified")
	}
}

// fuzzRoute drives one route with arbitrary bodies, correctly signed: the parsers and the dispatch
// must never panic and answer only 200 or 400.
func fuzzRoute(f *testing.F, path string, seeds [][]byte, check func(t *testing.T, a channel.Answer)) {
	s := newSetup(f)
	for _, b := range seeds {
		f.Add(b)
	}
	var h http.Handler
	for _, c := range []channel.Channel{s.p.SMS(), s.p.Call()} {
		for _, r := range c.(channel.Receiver).Routes(s.host) {
			if r.Path == path {
				h = r.Handler
			}
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := len(s.host.Answers())
		sig, ts := s.driver.Sign(body, time.Now())
		req := httptest.NewRequest(http.MethodPost, "/hooks/telnyx/"+path, bytes.NewReader(body))
		req.Header.Set(telnyx.SignatureHeader, sig)
		req.Header.Set(telnyx.TimestampHeader, ts)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d", rec.Code)
		}
		for _, a := range s.host.Answers()[before:] {
			check(t, a)
		}
	})
}

func FuzzSMSWebhook(f *testing.F) {
	s := newSetup(f)
	fuzzRoute(f, "sms", [][]byte{
		s.driver.MessageReceived("m1", callee, from, "Y 4821"),
		s.driver.MessageReceived("m2", callee, from, "n4821"),
		s.driver.MessageReceived("m3", "SHORT", from, "Y 4821"),
		s.driver.MessageFinalized(telnyxMessage("m4"), "delivered"),
		[]byte(`{"data":{"id":"e","event_type":"message.received","payload":{"id":"m","from":{"phone_number":1}}}}`),
		[]byte(`{"data":{"id":"e","event_type":"message.finalized","payload":{"id":"m","to":null}}}`),
		[]byte(`{"data":{"id":"e","event_type":"x","payload":[]}}`),
		[]byte(`{"data":null}`), []byte(`[]`), []byte(``),
	}, func(t *testing.T, a channel.Answer) {
		if a.Channel != "sms" || a.Token != "" || len(a.Code) != 4 || (a.Choice != "approve" && a.Choice != "deny") || !e164.MatchString(a.From) {
			t.Fatalf("ill-formed answer %+v", a)
		}
	})
}

func FuzzCallWebhook(f *testing.F) {
	s := newSetup(f)
	c := dial(f, s, notification(false))
	st := telnyx.ClientState{Token: token, State: "m0"}.Encode()
	fuzzRoute(f, "call", [][]byte{
		s.driver.Answered(c, c.ClientState),
		s.driver.MachineDetected(c, c.ClientState, "human"),
		s.driver.MachineDetected(c, c.ClientState, "machine"),
		s.driver.GatherEnded(c, st, "1", "valid"),
		s.driver.GatherEnded(c, telnyx.ClientState{Token: token, State: "t9"}.Encode(), "123456", "valid"),
		s.driver.GatherEnded(c, telnyx.ClientState{Token: token, State: "x"}.Encode(), "", "timeout"),
		s.driver.SpeakEnded(c, telnyx.ClientState{State: "bye"}.Encode()),
		s.driver.Hangup(c, "", "user_busy"),
		s.driver.StreamingStarted(c, c.ClientState),
		s.driver.StreamingStopped(c, c.ClientState),
		s.driver.StreamingFailed(c, c.ClientState, "connection refused"),
		[]byte(`{"data":{"id":"e","event_type":"call.gather.ended","payload":{"call_control_id":"x","client_state":"e30="}}}`),
		[]byte(`{"data":{"id":"e","event_type":"call.hangup","payload":{"call_control_id":7}}}`),
		[]byte(`{"data":{}}`), []byte(`null`),
	}, func(t *testing.T, a channel.Answer) {
		if a.Channel != "call" || a.Token == "" || a.Code != "" || (a.Choice != "approve" && a.Choice != "deny") ||
			(a.From != "" && !e164.MatchString(a.From)) || (a.TOTP != "" && len(a.TOTP) != 6) {
			t.Fatalf("ill-formed answer %+v", a)
		}
	})
}

// FuzzClientState: whatever parses re-encodes to a value that parses to the same state.
func FuzzClientState(f *testing.F) {
	for _, s := range []string{"", telnyx.ClientState{Token: token, State: "m0"}.Encode(), "e30=", "bnVsbA==", "W10=", "%%", "eyJ0IjoxfQ=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cs, err := telnyx.ParseClientState(v)
		if err != nil {
			return
		}
		again, err := telnyx.ParseClientState(cs.Encode())
		if err != nil || again != cs {
			t.Fatalf("%q: %+v then %+v, %v", v, cs, again, err)
		}
	})
}

func telnyxMessage(id string) telnyxtest.Message {
	return telnyxtest.Message{ID: id, From: from, To: callee, Text: "x"}
}
