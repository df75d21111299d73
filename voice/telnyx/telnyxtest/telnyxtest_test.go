package telnyxtest_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/telnyx/telnyxtest"
)

const key = "KEYtest"

func do(t *testing.T, s *telnyxtest.Server, auth, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const dialBody = `{"connection_id":"c","to":"+351912344821","from":"+14155550100","webhook_url":"https://x/hooks/telnyx/call","client_state":"e30=","timeout_secs":30,"answering_machine_detection":"detect"}`

// TestServerIsStrict: the fake refuses what Telnyx refuses, so a client bug cannot pass against it.
func TestServerIsStrict(t *testing.T) {
	t.Parallel()
	s := telnyxtest.New(t, key)
	for _, tc := range []struct {
		name, auth, path, body string
		want                   int
	}{
		{"no key", "", "/v2/messages", `{"from":"+14155550100","to":"+351912344821","text":"hi"}`, 401},
		{"wrong key", "other", "/v2/messages", `{"from":"+14155550100","to":"+351912344821","text":"hi"}`, 401},
		{"unknown field", key, "/v2/messages", `{"from":"+14155550100","to":"+351912344821","text":"hi","body":"x"}`, 422},
		{"no text", key, "/v2/messages", `{"from":"+14155550100","to":"+351912344821"}`, 422},
		{"unknown path", key, "/v2/sms", `{}`, 404},
		{"dial without timeout", key, "/v2/calls", strings.Replace(dialBody, `"timeout_secs":30`, `"timeout_secs":0`, 1), 422},
		{"dial with bad client_state", key, "/v2/calls", strings.Replace(dialBody, `"e30="`, `"%%"`, 1), 422},
		{"stream to an http URL", key, "/v2/calls", withStream(dialBody, "https://ony.test/hooks/telnyx/media", "inbound_track", "rtp", "PCMU"), 422},
		{"stream track unknown", key, "/v2/calls", withStream(dialBody, "wss://ony.test/m", "inbound", "rtp", "PCMU"), 422},
		{"stream codec in mp3 mode", key, "/v2/calls", withStream(dialBody, "wss://ony.test/m", "inbound_track", "mp3", "PCMU"), 422},
		{"stream codec unknown", key, "/v2/calls", withStream(dialBody, "wss://ony.test/m", "inbound_track", "rtp", "ulaw"), 422},
		{"stream options without a URL", key, "/v2/calls", withStream(dialBody, "", "inbound_track", "rtp", "PCMU"), 422},
		{"command to an unknown call", key, "/v2/calls/nope/actions/hangup", `{}`, 422},
		{"message", key, "/v2/messages", `{"from":"+14155550100","to":"+351912344821","text":"hi"}`, 200},
		{"dial", key, "/v2/calls", dialBody, 200},
		{"speak without voice", key, "/v2/calls/v3:call-1/actions/speak", `{"payload":"hi"}`, 422},
		{"gather without digits", key, "/v2/calls/v3:call-1/actions/gather_using_speak", `{"payload":"hi","voice":"female"}`, 422},
		{"unknown action", key, "/v2/calls/v3:call-1/actions/transfer", `{}`, 404},
		{"hangup", key, "/v2/calls/v3:call-1/actions/hangup", `{"command_id":"a"}`, 200},
		{"same command again", key, "/v2/calls/v3:call-1/actions/hangup", `{"command_id":"a"}`, 200},
	} {
		if got := do(t, s, tc.auth, tc.path, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if len(s.Messages()) != 1 || len(s.Calls()) != 1 || len(s.Commands()) != 1 {
		t.Fatalf("recorded %d messages, %d calls, %d commands", len(s.Messages()), len(s.Calls()), len(s.Commands()))
	}
	s.Fail(2, 503)
	for i, want := range []int{503, 503, 200} {
		if got := do(t, s, key, "/v2/messages", `{"from":"+14155550100","to":"+351912344821","text":"hi"}`); got != want {
			t.Errorf("request %d after Fail: %d, want %d", i, got, want)
		}
	}
}

// withStream adds the media stream fields to a dial body.
func withStream(body, u, track, mode, codec string) string {
	return strings.Replace(body, "{", `{"stream_url":"`+u+`","stream_track":"`+track+
		`","stream_bidirectional_mode":"`+mode+`","stream_bidirectional_codec":"`+codec+`",`, 1)
}

// TestServerRecordsTheStream: a dial with a websocket stream is accepted and keeps its fields.
func TestServerRecordsTheStream(t *testing.T) {
	t.Parallel()
	s := telnyxtest.New(t, key)
	if got := do(t, s, key, "/v2/calls", withStream(dialBody, "wss://ony.test/hooks/telnyx/media", "inbound_track", "rtp", "PCMU")); got != 200 {
		t.Fatalf("status %d", got)
	}
	c := s.Calls()
	if len(c) != 1 || c[0].StreamURL != "wss://ony.test/hooks/telnyx/media" || c[0].StreamTrack != "inbound_track" ||
		c[0].StreamMode != "rtp" || c[0].StreamCodec != "PCMU" {
		t.Fatalf("calls %+v", c)
	}
}

// TestDriverSignsAsTelnyx: the driver's good signatures verify, its broken ones do not.
func TestDriverSignsAsTelnyx(t *testing.T) {
	t.Parallel()
	d := telnyxtest.NewDriver(t)
	raw, err := base64.StdEncoding.DecodeString(d.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	body := d.Answered(telnyxtest.Call{ID: "v3:call-1"}, "")
	now := time.Now()
	sig, ts := d.Sign(body, now)
	if err := telnyx.Verify(ed25519.PublicKey(raw), sig, ts, body, now); err != nil {
		t.Fatal(err)
	}
	if ev, err := telnyx.ParseEvent(body); err != nil || ev.Type != "call.answered" {
		t.Fatalf("event %+v, %v", ev, err)
	}
	if a, b := d.Event("x", map[string]any{}), d.Event("x", map[string]any{}); string(a) == string(b) {
		t.Fatal("two events with one id")
	}
}
