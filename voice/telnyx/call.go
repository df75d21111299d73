package telnyx

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// RingTimeout is how long a call rings before it counts as not answered.
const RingTimeout = 30

// Speech settings for every prompt.
const (
	speakVoice    = "female"
	speakLanguage = "en-US"
)

// Client-state steps that are not keypad states: the goodbye being spoken (hang up when it ends) and
// a hang-up because a machine answered (already reported).
const (
	stateBye     = "bye"
	stateMachine = "machine"
)

// Call is the provider's call channel: keypad calls over Call Control.
func (p *Provider) Call() channel.Channel { return &callChannel{p} }

type callChannel struct{ p *Provider }

var _ channel.Receiver = (*callChannel)(nil)

func (*callChannel) Kind() string     { return voice.CallKind.Name }
func (*callChannel) Provider() string { return Name }

// ClientState is what Ony keeps in a call's client_state (base64 of this JSON): the call's decision
// token and the keypad state. Telnyx echoes it on the call's next events; it is Ony's and signed
// back with them, so any replica can continue the call.
type ClientState struct {
	Token string `json:"t,omitempty"`
	State string `json:"s,omitempty"`
}

// Encode is the client_state value.
func (s ClientState) Encode() string {
	b, _ := json.Marshal(s) // two strings: cannot fail
	return base64.StdEncoding.EncodeToString(b)
}

// ParseClientState decodes a client_state value; empty is the zero state.
func ParseClientState(v string) (ClientState, error) {
	var s ClientState
	if v == "" {
		return s, nil
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return s, errors.New("telnyx: client_state is not base64")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return ClientState{}, errors.New("telnyx: client_state is not Ony's")
	}
	return s, nil
}

type dialRequest struct {
	ConnectionID string `json:"connection_id"`
	To           string `json:"to"`
	From         string `json:"from"`
	WebhookURL   string `json:"webhook_url"`
	ClientState  string `json:"client_state"`
	TimeoutSecs  int    `json:"timeout_secs"`
	AMD          string `json:"answering_machine_detection"`
}

// Notify places the call, with machine detection on and the token in its client_state; what
// happens next arrives as events on POST /hooks/telnyx/call.
func (c *callChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	if n.Token == "" {
		return channel.Delivery{}, errors.New("telnyx: call: a call needs a decision token")
	}
	to, err := voice.Phone.Normalize(n.Recipient.Address)
	if err != nil {
		return channel.Delivery{}, fmt.Errorf("telnyx: call: %w", err)
	}
	req := dialRequest{ConnectionID: c.p.connection, To: to, From: c.p.from, WebhookURL: c.p.hookURL("call"),
		ClientState: ClientState{Token: n.Token}.Encode(), TimeoutSecs: RingTimeout, AMD: "detect"}
	var out struct {
		Data struct {
			CallControlID string `json:"call_control_id"`
		} `json:"data"`
	}
	if err := c.p.call(ctx, "dial", "/v2/calls", req, &out, false); err != nil {
		return channel.Delivery{}, err
	}
	if out.Data.CallControlID == "" {
		return channel.Delivery{}, errors.New("telnyx: dial: the reply has no call_control_id")
	}
	return channel.Delivery{Ref: out.Data.CallControlID, State: store.SendSent}, nil
}

// Update does nothing: a call cannot be changed afterwards.
func (*callChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver: POST /hooks/telnyx/call takes every Call Control event; in
// voice-agent mode GET /hooks/telnyx/media is the calls' media websocket.
func (c *callChannel) Routes(host channel.Host) []channel.Route {
	rs := []channel.Route{{Method: http.MethodPost, Path: "call", Handler: c.p.hook(host,
		func(ev Event) string { return "event:" + ev.ID },
		func(ctx context.Context, ev Event) { c.onEvent(ctx, host, ev) })}}
	if c.p.media != nil {
		// The websocket authenticates by the call's token in its start message, not by a signature.
		rs = append(rs, channel.Route{Method: http.MethodGet, Path: "media", Handler: c.p.media(host), Stream: true})
	}
	return rs
}

// CallEvent is the part of a Call Control event's payload Ony reads.
type CallEvent struct {
	CallControlID string `json:"call_control_id"`
	ClientState   string `json:"client_state"`
	From          string `json:"from"`
	To            string `json:"to"`
	Direction     string `json:"direction"`
	// Digits and Status: call.gather.ended.
	Digits string `json:"digits"`
	Status string `json:"status"`
	// Result: call.machine.detection.ended (human, machine, not_sure).
	Result string `json:"result"`
	// HangupCause: call.hangup.
	HangupCause string `json:"hangup_cause"`
}

// ParseCallEvent decodes a Call Control event's payload; one without a call_control_id is malformed.
func ParseCallEvent(payload []byte) (CallEvent, error) {
	var e CallEvent
	if err := json.Unmarshal(payload, &e); err != nil {
		return CallEvent{}, fmt.Errorf("telnyx: call event: %w", err)
	}
	if e.CallControlID == "" {
		return CallEvent{}, errors.New("telnyx: call event: no call_control_id")
	}
	return e, nil
}

func (c *callChannel) onEvent(ctx context.Context, host channel.Host, ev Event) {
	e, err := ParseCallEvent(ev.Payload)
	if err != nil {
		c.p.log.Warn("telnyx: malformed call event dropped", "event", ev.Type)
		return
	}
	cs, err := ParseClientState(e.ClientState)
	if err != nil {
		c.p.log.Warn("telnyx: call event with a foreign client_state dropped", "event", ev.Type)
		return
	}
	// Incoming calls to the number are not Ony's to answer; only calls Ony placed carry a state.
	if e.Direction == "incoming" {
		return
	}
	switch ev.Type {
	case "call.machine.detection.ended":
		// The script starts only once detection says a person is there, so an answering machine
		// never records who asks, what or why. A call without Ony's state is not Ony's to end.
		if cs.Token == "" {
			return
		}
		if e.Result == "machine" || e.Result == "fax_detected" {
			c.command(ctx, ev.ID, e.CallControlID, "hangup", commandBody{ClientState: ClientState{State: stateMachine}.Encode()})
			report(ctx, c.p, host, e.CallControlID, store.SendNoAnswer)
			return
		}
		if c.p.media != nil {
			// A person answered: only now is the call connected to the agent's stream (inbound audio to
			// Ony, Ony's back as RTP µ-law), so a voicemail never hears who asks, what or why. The
			// stream's start carries this client_state, whose token authenticates it; the keypad waits
			// for streaming.stopped.
			ws := c.p.hookURL("media")
			c.command(ctx, ev.ID, e.CallControlID, "streaming_start", commandBody{
				StreamURL: "ws" + strings.TrimPrefix(ws, "http"), StreamTrack: "inbound_track", StreamMode: "rtp", StreamCodec: "PCMU",
				ClientState: ClientState{Token: cs.Token}.Encode()})
			return
		}
		c.start(ctx, host, ev.ID, e.CallControlID, cs.Token)
	case "streaming.stopped", "streaming.failed":
		// The agent's stream ended undecided (the model failed, or it never connected) and the call
		// goes on: the keypad takes over; a handoff decided meanwhile just gets its goodbye. Only calls
		// still on the stream's state get here: a machine's hang-up state carries no token.
		if c.p.media == nil || cs.Token == "" || cs.State != "" {
			return
		}
		c.start(ctx, host, ev.ID, e.CallControlID, cs.Token)
	case "call.gather.ended":
		if cs.Token == "" || e.Status == "call_hangup" || e.Status == "cancelled" {
			return
		}
		n, err := host.Recall(ctx, cs.Token, voice.CallKind.Name)
		if err != nil {
			c.render(ctx, ev.ID, e.CallControlID, cs.Token, goodbye(c.p, err))
			return
		}
		// The callee is who Ony called: the number the call went to, as Telnyx signed it.
		callee, _ := voice.Phone.Normalize(e.To)
		prompt := voice.Keypad(ctx, host, voice.CallKind.Name, cs.Token, callee, n, cs.State, e.Digits)
		if err := voice.Record(ctx, host, Name, e.CallControlID, prompt); err != nil {
			c.p.log.Warn("telnyx: recording how a call ended failed", "err", err)
		}
		c.render(ctx, ev.ID, e.CallControlID, cs.Token, prompt)
	case "call.speak.ended":
		if cs.State == stateBye {
			c.command(ctx, ev.ID, e.CallControlID, "hangup", commandBody{})
		}
	case "call.hangup":
		if cs.State == stateMachine {
			return // reported when the machine was detected
		}
		report(ctx, c.p, host, e.CallControlID, HangupState(e.HangupCause))
	default:
		c.p.log.Debug("telnyx: call event ignored", "event", ev.Type)
	}
}

// start says the script and menu of a live handoff, or the goodbye of one that is not.
func (c *callChannel) start(ctx context.Context, host channel.Host, eventID, callID, token string) {
	n, err := host.Recall(ctx, token, voice.CallKind.Name)
	if err != nil {
		c.render(ctx, eventID, callID, token, goodbye(c.p, err))
		return
	}
	c.render(ctx, eventID, callID, token, voice.Start(n))
}

// HangupState is what a call's hangup_cause means for its send: a normal end after it was answered
// is answered, a ring-out is no_answer, a busy line or a rejection is busy, anything else failed.
func HangupState(cause string) store.SendState {
	switch cause {
	case "normal_clearing":
		return store.SendAnswered
	case "timeout", "no_answer", "originator_cancel":
		return store.SendNoAnswer
	case "user_busy", "call_rejected":
		return store.SendBusy
	}
	return store.SendFailed
}

// goodbye ends a call whose token is no longer good (decided elsewhere, expired) with a short word.
func goodbye(p *Provider, err error) voice.Prompt {
	if pr, ok := problem.As(err); ok && pr.Code == "already_final" {
		return voice.Prompt{Say: "This request was already decided. Goodbye.", Hangup: true, Outcome: "already_final"}
	}
	if _, ok := problem.As(err); !ok {
		p.log.Warn("telnyx: recall failed", "err", err)
	}
	return voice.Prompt{Say: "This request is no longer open. Goodbye.", Hangup: true, Outcome: "refused"}
}

type commandBody struct {
	Payload       string `json:"payload,omitempty"`
	Voice         string `json:"voice,omitempty"`
	Language      string `json:"language,omitempty"`
	MinimumDigits int    `json:"minimum_digits,omitempty"`
	MaximumDigits int    `json:"maximum_digits,omitempty"`
	ValidDigits   string `json:"valid_digits,omitempty"`
	ClientState   string `json:"client_state,omitempty"`
	CommandID     string `json:"command_id,omitempty"`
	// streaming_start only.
	StreamURL   string `json:"stream_url,omitempty"`
	StreamTrack string `json:"stream_track,omitempty"`
	StreamMode  string `json:"stream_bidirectional_mode,omitempty"`
	StreamCodec string `json:"stream_bidirectional_codec,omitempty"`
}

// render says a prompt in Call Control commands: a gather says and collects; a last word is spoken
// with a "bye" state so its speak.ended hangs up; a silent end hangs up at once.
func (c *callChannel) render(ctx context.Context, eventID, callID, token string, p voice.Prompt) {
	switch {
	case p.Hangup && p.Say == "":
		c.command(ctx, eventID, callID, "hangup", commandBody{})
	case p.Hangup:
		c.command(ctx, eventID, callID, "speak", commandBody{Payload: p.Say, Voice: speakVoice, Language: speakLanguage,
			ClientState: ClientState{State: stateBye}.Encode()})
	default:
		c.command(ctx, eventID, callID, "gather_using_speak", commandBody{Payload: p.Say, Voice: speakVoice, Language: speakLanguage,
			MinimumDigits: p.Gather, MaximumDigits: p.Gather, ValidDigits: "0123456789*#",
			ClientState: ClientState{Token: token, State: p.State}.Encode()})
	}
}

// command posts one Call Control command. Its command_id is the event's id, so a command repeated
// (our retry, or the same event handled twice when dedupe was down) runs once.
func (c *callChannel) command(ctx context.Context, eventID, callID, action string, body commandBody) {
	body.CommandID = eventID + ":" + action
	path := "/v2/calls/" + pathEscape(callID) + "/actions/" + action
	if err := c.p.call(ctx, action, path, body, nil, true); err != nil {
		c.p.log.Warn("telnyx: call command failed", "action", action, "err", err)
	}
}
