package agent

import (
	"errors"
	"testing"
)

// FuzzServerEvent feeds the realtime server-event decoder arbitrary messages: it must never panic,
// and whatever it accepts has a type and, for audio, decoded bytes.
func FuzzServerEvent(f *testing.F) {
	for _, s := range []string{
		`{"type":"session.updated","session":{}}`,
		`{"type":"response.output_audio.delta","response_id":"r","item_id":"item_1","output_index":0,"content_index":0,"delta":"//8A/w=="}`,
		`{"type":"response.audio.delta","item_id":"item_1","delta":""}`,
		`{"type":"response.output_audio.delta","item_id":"i","delta":"not base64!"}`,
		`{"type":"input_audio_buffer.speech_started","audio_start_ms":300,"item_id":"u"}`,
		`{"type":"response.function_call_arguments.done","call_id":"call_1","name":"propose_decision","arguments":"{\"option\":\"approve\",\"reason\":\"x\"}"}`,
		`{"type":"response.function_call_arguments.done","name":"propose_decision"}`,
		`{"type":"error","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"m"}}`,
		`{"type":"response.done","response":{"status":"cancelled"}}`,
		`{"type":""}`, `{}`, `[]`, `null`, `"x"`, "\x00{not json", `{"type":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := decodeServerEvent(msg)
		if err != nil {
			if !errors.Is(err, errGarbage) {
				t.Fatalf("error %v does not wrap errGarbage", err)
			}
			return
		}
		if ev.Type == "" {
			t.Fatal("accepted an event without a type")
		}
		if ev.Type == evFunctionCall && (ev.CallID == "" || ev.Name == "") {
			t.Fatal("accepted a function call without call_id or name")
		}
		if ev.Audio != nil && ev.Type != evAudioDelta && ev.Type != evAudioDeltaBeta {
			t.Fatal("audio on a non-audio event")
		}
	})
}

func TestDecodeServerEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		msg     string
		typ     string
		audio   string
		callID  string
		errCode string
		bad     bool
	}{
		{msg: `{"type":"response.output_audio.delta","item_id":"i1","delta":"//8A"}`, typ: evAudioDelta, audio: "\xff\xff\x00"},
		{msg: `{"type":"response.audio.delta","item_id":"i1","delta":"AQI="}`, typ: evAudioDeltaBeta, audio: "\x01\x02"},
		{msg: `{"type":"response.output_audio.delta","delta":"%%%"}`, bad: true},
		{msg: `{"type":"response.function_call_arguments.done","call_id":"c","name":"propose_decision","arguments":"{}"}`, typ: evFunctionCall, callID: "c"},
		{msg: `{"type":"response.function_call_arguments.done","name":"propose_decision"}`, bad: true},
		{msg: `{"type":"error","error":{"code":"rate_limit_exceeded"}}`, typ: evError, errCode: "rate_limit_exceeded"},
		{msg: `{"no":"type"}`, bad: true},
		{msg: `garbage`, bad: true},
	}
	for _, tc := range tests {
		ev, err := decodeServerEvent([]byte(tc.msg))
		if tc.bad {
			if err == nil {
				t.Errorf("%s: accepted", tc.msg)
			}
			continue
		}
		if err != nil || ev.Type != tc.typ || string(ev.Audio) != tc.audio || ev.CallID != tc.callID || ev.ErrCode != tc.errCode {
			t.Errorf("%s: got %+v, %v", tc.msg, ev, err)
		}
	}
}
