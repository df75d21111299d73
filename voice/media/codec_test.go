package media_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"

	"github.com/ony-ai/ony/voice/media"
)

var (
	frame    = []byte{0xFF, 0x7F, 0x00, 0x80, 0x12}
	frameB64 = base64.StdEncoding.EncodeToString(frame)
	// client_state "t=tok&x=a b", as Telnyx carries it (base64).
	clientState = base64.StdEncoding.EncodeToString([]byte("t=tok&x=a+b"))
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    media.Flavor
		msg  string
		want media.Event
	}{
		// Twilio, the vectors of PROTOCOLS.md: numbers as strings.
		{"twilio connected", media.Twilio, `{"event":"connected","protocol":"Call","version":"1.0.0"}`,
			media.Event{Kind: media.Connected}},
		{"twilio start", media.Twilio, `{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{"t":"tok"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}`,
			media.Event{Kind: media.Start, StreamID: "MZ1", CallRef: "CA1", Seq: 1, Params: map[string]string{"t": "tok"}, Encoding: "audio/x-mulaw", SampleRate: 8000}},
		{"twilio media", media.Twilio, `{"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` + frameB64 + `"},"streamSid":"MZ1"}`,
			media.Event{Kind: media.Media, StreamID: "MZ1", Seq: 4, Chunk: 2, Timestamp: 5, Payload: frame}},
		{"twilio dtmf", media.Twilio, `{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`,
			media.Event{Kind: media.DTMF, StreamID: "MZ1", Seq: 5, Digit: "1"}},
		{"twilio mark", media.Twilio, `{"event":"mark","sequenceNumber":"6","streamSid":"MZ1","mark":{"name":"x"}}`,
			media.Event{Kind: media.Mark, StreamID: "MZ1", Seq: 6, Name: "x"}},
		{"twilio stop", media.Twilio, `{"event":"stop","sequenceNumber":"7","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`,
			media.Event{Kind: media.Stop, StreamID: "MZ1", CallRef: "CA1", Seq: 7}},
		// SignalWire: UUIDs, media without streamSid, bare stop, dtmf without track.
		{"signalwire connected", media.SignalWire, `{"event":"connected","protocol":"Call","version":"0.2.0"}`,
			media.Event{Kind: media.Connected}},
		{"signalwire start", media.SignalWire, `{"event":"start","sequenceNumber":"1","start":{"streamSid":"5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","callSid":"0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d","customParameters":{"t":"tok"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}}}`,
			media.Event{Kind: media.Start, StreamID: "5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", CallRef: "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", Seq: 1, Params: map[string]string{"t": "tok"}, Encoding: "audio/x-mulaw", SampleRate: 8000}},
		{"signalwire media", media.SignalWire, `{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"` + frameB64 + `"}}`,
			media.Event{Kind: media.Media, Seq: 2, Chunk: 1, Payload: frame}},
		{"signalwire dtmf", media.SignalWire, `{"event":"dtmf","dtmf":{"digit":"#","duration":250}}`,
			media.Event{Kind: media.DTMF, Digit: "#"}},
		{"signalwire bare stop", media.SignalWire, `{"event":"stop"}`, media.Event{Kind: media.Stop}},
		// Telnyx: snake_case, PCMU, client_state.
		{"telnyx start", media.Telnyx, `{"event":"start","sequence_number":"1","start":{"user_id":"u1","call_control_id":"v3:abc","call_session_id":"s1","client_state":"` + clientState + `","media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}},"stream_id":"32de0dea"}`,
			media.Event{Kind: media.Start, StreamID: "32de0dea", CallRef: "v3:abc", Seq: 1, Params: map[string]string{"t": "tok", "x": "a b"}, Encoding: "audio/x-mulaw", SampleRate: 8000}},
		{"telnyx json client_state", media.Telnyx, `{"event":"start","start":{"call_control_id":"v3:abc","client_state":"` + base64.StdEncoding.EncodeToString([]byte(`{"t":"tok"}`)) + `"},"stream_id":"s"}`,
			media.Event{Kind: media.Start, StreamID: "s", CallRef: "v3:abc", Params: map[string]string{"t": "tok"}}},
		{"telnyx media", media.Telnyx, `{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"` + frameB64 + `"},"stream_id":"32de0dea"}`,
			media.Event{Kind: media.Media, StreamID: "32de0dea", Seq: 4, Chunk: 2, Timestamp: 5, Payload: frame}},
		{"telnyx dtmf", media.Telnyx, `{"event":"dtmf","stream_id":"32de0dea","occurred_at":"2026-01-01T00:00:00Z","sequence_number":"5","dtmf":{"digit":"9"}}`,
			media.Event{Kind: media.DTMF, StreamID: "32de0dea", Seq: 5, Digit: "9"}},
		{"telnyx mark", media.Telnyx, `{"event":"mark","sequence_number":"6","stream_id":"32de0dea","mark":{"name":"m1"}}`,
			media.Event{Kind: media.Mark, StreamID: "32de0dea", Seq: 6, Name: "m1"}},
		{"telnyx stop", media.Telnyx, `{"event":"stop","sequence_number":"7","stop":{"user_id":"u1","call_control_id":"v3:abc"},"stream_id":"32de0dea"}`,
			media.Event{Kind: media.Stop, StreamID: "32de0dea", CallRef: "v3:abc", Seq: 7}},
		// Plivo: numbers as numbers, extra headers, playedStream.
		{"plivo start", media.Plivo, `{"event":"start","sequenceNumber":0,"start":{"callId":"c-1","streamId":"s-1","accountId":"MA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}},"extra_headers":"{\"t\":\"tok\"}"}`,
			media.Event{Kind: media.Start, StreamID: "s-1", CallRef: "c-1", Params: map[string]string{"t": "tok"}, Encoding: "audio/x-mulaw", SampleRate: 8000}},
		{"plivo start k=v headers", media.Plivo, `{"event":"start","start":{"callId":"c-1","streamId":"s-1"},"extra_headers":"t=tok,x=1"}`,
			media.Event{Kind: media.Start, StreamID: "s-1", CallRef: "c-1", Params: map[string]string{"t": "tok", "x": "1"}}},
		{"plivo media", media.Plivo, `{"event":"media","sequenceNumber":3,"streamId":"s-1","media":{"track":"inbound","timestamp":"1700000000020","chunk":2,"payload":"` + frameB64 + `"}}`,
			media.Event{Kind: media.Media, StreamID: "s-1", Seq: 3, Chunk: 2, Timestamp: 1700000000020, Payload: frame}},
		{"plivo dtmf", media.Plivo, `{"event":"dtmf","sequenceNumber":4,"streamId":"s-1","dtmf":{"track":"inbound","digit":"2"}}`,
			media.Event{Kind: media.DTMF, StreamID: "s-1", Seq: 4, Digit: "2"}},
		{"plivo playedStream", media.Plivo, `{"event":"playedStream","sequenceNumber":5,"streamId":"s-1","name":"cp1"}`,
			media.Event{Kind: media.Mark, StreamID: "s-1", Seq: 5, Name: "cp1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := media.Decode(tt.f, []byte(tt.msg))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg string
		unknown   bool
	}{
		{"not json", `{"event":`, false},
		{"dtmf two keys", `{"event":"dtmf","dtmf":{"digit":"12"}}`, false},
		{"dtmf bad key", `{"event":"dtmf","dtmf":{"digit":"x"}}`, false},
		{"dtmf no digit", `{"event":"dtmf"}`, false},
		{"bad payload", `{"event":"media","media":{"payload":"!!"}}`, false},
		{"bad number", `{"event":"media","sequenceNumber":"four","media":{"payload":""}}`, false},
		{"start without start", `{"event":"start"}`, false},
		{"media without media", `{"event":"media"}`, false},
		{"bad client_state", `{"event":"start","start":{"client_state":"%%"}}`, false},
		{"params not an object", `{"event":"start","start":{"customParameters":[1]}}`, false},
		{"unknown", `{"event":"clearedAudio","streamId":"s"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := media.Decode(media.Twilio, []byte(tt.msg))
			if err == nil {
				t.Fatal("Decode accepted it")
			}
			if errors.Is(err, media.ErrUnknownEvent) != tt.unknown {
				t.Errorf("err = %v, unknown = %v", err, tt.unknown)
			}
		})
	}
}

func TestEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f                  media.Flavor
		id                 string
		media, mark, clear string
	}{
		{media.Twilio, "MZ1",
			`{"event":"media","streamSid":"MZ1","media":{"payload":"` + frameB64 + `"}}`,
			`{"event":"mark","streamSid":"MZ1","mark":{"name":"m\"1"}}`,
			`{"event":"clear","streamSid":"MZ1"}`},
		{media.SignalWire, "5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
			`{"event":"media","streamSid":"5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","media":{"payload":"` + frameB64 + `"}}`,
			`{"event":"mark","streamSid":"5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","mark":{"name":"m\"1"}}`,
			`{"event":"clear","streamSid":"5f8a0a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}`},
		{media.Telnyx, "32de0dea",
			`{"event":"media","media":{"payload":"` + frameB64 + `"}}`,
			`{"event":"mark","mark":{"name":"m\"1"}}`,
			`{"event":"clear"}`},
		{media.Plivo, "s-1",
			`{"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"` + frameB64 + `"}}`,
			`{"event":"checkpoint","streamId":"s-1","name":"m\"1"}`,
			`{"event":"clearAudio","streamId":"s-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			t.Parallel()
			if got := string(media.EncodeMedia(tt.f, tt.id, frame)); got != tt.media {
				t.Errorf("EncodeMedia = %s, want %s", got, tt.media)
			}
			if got := string(media.EncodeMark(tt.f, tt.id, `m"1`)); got != tt.mark {
				t.Errorf("EncodeMark = %s, want %s", got, tt.mark)
			}
			if got := string(media.EncodeClear(tt.f, tt.id)); got != tt.clear {
				t.Errorf("EncodeClear = %s, want %s", got, tt.clear)
			}
			// Twilio's dialects share media and mark both ways: what Ony writes, Ony reads back.
			if tt.f == media.Plivo {
				return
			}
			ev, err := media.Decode(tt.f, media.EncodeMedia(tt.f, tt.id, frame))
			if err != nil || ev.Kind != media.Media || !bytes.Equal(ev.Payload, frame) {
				t.Errorf("media round trip = %+v, %v", ev, err)
			}
			ev, err = media.Decode(tt.f, media.EncodeMark(tt.f, tt.id, `m"1`))
			if err != nil || ev.Kind != media.Mark || ev.Name != `m"1` {
				t.Errorf("mark round trip = %+v, %v", ev, err)
			}
		})
	}
}

// FuzzDecode feeds every flavor arbitrary messages: Decode must not panic, and what it accepts must
// be an event Ony can act on safely (a known kind, a single valid key).
func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"streamSid":"MZ1","callSid":"CA1","customParameters":{"t":"tok"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000}},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"4","media":{"chunk":"2","timestamp":"5","payload":"` + frameB64 + `"},"streamSid":"MZ1"}`,
		`{"event":"dtmf","dtmf":{"digit":"1","duration":250}}`,
		`{"event":"mark","mark":{"name":"x"}}`,
		`{"event":"stop"}`,
		`{"event":"start","sequence_number":"1","start":{"call_control_id":"v3:a","client_state":"` + clientState + `","media_format":{"encoding":"PCMU","sample_rate":8000}},"stream_id":"s"}`,
		`{"event":"start","sequenceNumber":0,"start":{"callId":"c","streamId":"s"},"extra_headers":"{\"t\":\"tok\"}"}`,
		`{"event":"media","sequenceNumber":3,"media":{"chunk":2.0,"payload":"` + frameB64 + `"}}`,
		`{"event":"playedStream","name":"cp"}`,
		`{"event":"media","sequenceNumber":1e300}`,
		`[]`, `null`, ``,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, msg []byte) {
		fl := media.Flavor(int(which) % 4)
		ev, err := media.Decode(fl, msg)
		if err != nil {
			if ev.Kind != 0 {
				t.Fatalf("error %v with an event %v", err, ev.Kind)
			}
			return
		}
		if ev.Kind < media.Connected || ev.Kind > media.Stop {
			t.Fatalf("kind %v", ev.Kind)
		}
		if ev.Kind == media.DTMF && (len(ev.Digit) != 1 || !bytes.ContainsAny([]byte("0123456789*#ABCD"), ev.Digit)) {
			t.Fatalf("digit %q", ev.Digit)
		}
		if ev.Kind == media.Start && ev.Params == nil {
			t.Fatal("start without params map")
		}
		if ev.Kind == media.Media && fl != media.Plivo {
			back, err := media.Decode(fl, media.EncodeMedia(fl, ev.StreamID, ev.Payload))
			if err != nil || !bytes.Equal(back.Payload, ev.Payload) {
				t.Fatalf("payload does not survive a round trip: %v", err)
			}
		}
	})
}
