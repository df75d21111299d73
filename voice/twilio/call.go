package twilio

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// ringTimeout is how long a call rings before it counts as not answered, in seconds.
const ringTimeout = "30"

// Call is the provider's call channel (kind call): it phones the person, and the call document
// (fetched once someone picks up) reads the script and takes the answer on the keypad.
func (p *Provider) Call() channel.Channel { return &callChannel{p} }

type callChannel struct{ p *Provider }

func (*callChannel) Kind() string       { return voice.CallKind.Name }
func (c *callChannel) Provider() string { return c.p.name }

// Notify places the call, machine detection on, ringing 30 s; Ref is the call SID. The decision
// token travels only in the document URL, which the provider signs back to Ony.
func (c *callChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	p := c.p
	if n.Token == "" {
		return channel.Delivery{}, fmt.Errorf("%s: call: the notification carries no decision token", p.name)
	}
	to := n.Recipient.Address
	if _, err := voice.Phone.Normalize(to); err != nil {
		return channel.Delivery{}, fmt.Errorf("%s: call: %w", p.name, err)
	}
	f := url.Values{
		"To": {to}, "From": {p.from},
		"Url": {p.hookURL("call", url.Values{"t": {n.Token}})}, "Method": {http.MethodPost},
		"StatusCallback":       {p.hookURL("call/status", nil)},
		"StatusCallbackMethod": {http.MethodPost},
		"StatusCallbackEvent":  {"answered", "completed"},
		"MachineDetection":     {"Enable"},
		"Timeout":              {ringTimeout},
	}
	r, err := p.post(ctx, "Calls.json", f)
	if err != nil {
		return channel.Delivery{}, fmt.Errorf("%s: call to %s: %w", p.name, voice.MaskPhone(to), err)
	}
	return channel.Delivery{Ref: r.SID, State: store.SendSent}, nil
}

// Update does nothing: the call is over, or its keypad already said the outcome.
func (*callChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver: POST /hooks/{name}/call (the call document, ?t=token),
// /call/gather (the keypad's digits, ?t=token&s=state) and /call/status (status callbacks).
func (c *callChannel) Routes(host channel.Host) []channel.Route {
	rs := []channel.Route{
		{Method: http.MethodPost, Path: "call", Handler: c.p.verified(host, "call", c.document)},
		{Method: http.MethodPost, Path: "call/gather", Handler: c.p.verified(host, "call/gather", c.gather)},
		{Method: http.MethodPost, Path: "call/status", Handler: c.p.verified(host, "call/status", c.status)},
	}
	if c.p.media != nil {
		// The websocket authenticates by the call's token in its start message, not by a signature.
		rs = append(rs, channel.Route{Method: http.MethodGet, Path: "media", Handler: c.p.media(host, c.p.flavor), Stream: true})
	}
	return rs
}

// agent connects the call to the media websocket with its token as a stream parameter; when the
// stream ends (the model failed, or the decision was made) the call goes on at the keypad.
func (c *callChannel) agent(w http.ResponseWriter, token string) {
	ws := c.p.hookURL("media", nil)
	ws = "ws" + strings.TrimPrefix(ws, "http") // https → wss, http → ws
	resume := c.p.hookURL("call/gather", url.Values{"t": {token}, "s": {voice.StateResume}})
	twiml(w, `<Connect><Stream url="`+esc(ws)+`"><Parameter name="t" value="`+esc(token)+`"/></Stream></Connect>`,
		`<Redirect method="POST">`+esc(resume)+`</Redirect>`)
}

// isMachine reads AnsweredBy: machine_start, machine_end_beep… and fax are not a person.
func isMachine(answeredBy string) bool {
	return strings.HasPrefix(answeredBy, "machine") || answeredBy == "fax"
}

const hangup = "<Hangup/>"

// document is what the call does once picked up: hang up on a machine, else the script and menu.
func (c *callChannel) document(w http.ResponseWriter, r *http.Request, host channel.Host, req request) {
	sid, token := req.params.Get("CallSid"), req.query.Get("t")
	if sid == "" || token == "" {
		http.Error(w, "not a call of Ony's", http.StatusBadRequest)
		return
	}
	if !c.p.fresh(r.Context(), host, "call:"+sid+":"+req.digest) {
		twiml(w, hangup)
		return
	}
	if isMachine(req.params.Get("AnsweredBy")) {
		c.p.report(r.Context(), host, sid, store.SendNoAnswer)
		c.render(w, token, voice.Machine())
		return
	}
	n, err := host.Recall(r.Context(), token, voice.CallKind.Name)
	if err != nil {
		c.render(w, token, c.goodbye(err))
		return
	}
	if c.p.media != nil {
		c.agent(w, token)
		return
	}
	c.render(w, token, voice.Start(n))
}

// gather takes the digits pressed (none: the gather timed out) and says what comes next.
func (c *callChannel) gather(w http.ResponseWriter, r *http.Request, host channel.Host, req request) {
	sid, token, state := req.params.Get("CallSid"), req.query.Get("t"), req.query.Get("s")
	if sid == "" || token == "" {
		http.Error(w, "not a call of Ony's", http.StatusBadRequest)
		return
	}
	if !c.p.fresh(r.Context(), host, "call/gather:"+sid+":"+req.digest) {
		twiml(w, hangup)
		return
	}
	n, err := host.Recall(r.Context(), token, voice.CallKind.Name)
	if err != nil {
		c.render(w, token, c.goodbye(err))
		return
	}
	// The callee is the number called: on an outbound call that is To.
	callee := req.params.Get("To")
	prompt := voice.Keypad(r.Context(), host, voice.CallKind.Name, token, callee, n, state, req.params.Get("Digits"))
	if err := voice.Record(r.Context(), host, c.p.name, sid, prompt); err != nil {
		c.p.log.Warn(c.p.name+": recording how a call ended failed", "err", err)
	}
	c.render(w, token, prompt)
}

// goodbye ends a call whose handoff cannot be decided any more (decided, expired, unknown token).
func (c *callChannel) goodbye(err error) voice.Prompt {
	if p, ok := problem.As(err); ok && p.Code == "already_final" {
		return voice.Prompt{Say: strings.TrimSuffix(p.Message, ".") + ". Goodbye.", Hangup: true, Outcome: "already_final"}
	}
	if _, ok := problem.As(err); !ok {
		c.p.log.Warn(c.p.name+": recalling a call's handoff failed", "err", err)
	}
	return voice.Prompt{Say: "This is Ony. There is nothing left to decide on this call. Goodbye.", Hangup: true, Outcome: "refused"}
}

// render says a prompt in TwiML: a Gather posting the digits (or nothing, on a timeout) to the
// gather route with the state, or the words and a hang-up.
func (c *callChannel) render(w http.ResponseWriter, token string, pr voice.Prompt) {
	var say string
	if pr.Say != "" {
		say = "<Say>" + esc(pr.Say) + "</Say>"
	}
	if pr.Hangup || pr.Gather <= 0 {
		twiml(w, say, hangup)
		return
	}
	action := c.p.hookURL("call/gather", url.Values{"t": {token}, "s": {pr.State}})
	timeout := "5"
	if pr.Gather > 1 {
		timeout = "10"
	}
	// actionOnEmptyResult posts a timed-out gather to the action without digits; the Redirect does
	// the same where it is not supported, so silence always reaches the keypad's count.
	twiml(w, `<Gather input="dtmf" numDigits="`+strconv.Itoa(pr.Gather)+`" timeout="`+timeout+
		`" actionOnEmptyResult="true" method="POST" action="`+esc(action)+`">`+say+`</Gather>`,
		`<Redirect method="POST">`+esc(action)+`</Redirect>`)
}

// status maps a status callback to the send's state. A call a person picked up is answered, also
// when it completes; one a machine picked up did not reach anyone.
func (c *callChannel) status(w http.ResponseWriter, r *http.Request, host channel.Host, req request) {
	sid := req.params.Get("CallSid")
	if sid == "" {
		http.Error(w, "not a call status", http.StatusBadRequest)
		return
	}
	if st := callState(req.params.Get("CallStatus"), req.params.Get("AnsweredBy")); st != "" &&
		c.p.fresh(r.Context(), host, "call/status:"+sid+":"+req.digest) {
		c.p.report(r.Context(), host, sid, st)
	}
	w.WriteHeader(http.StatusNoContent)
}

// callState maps CallStatus (and AnsweredBy) to a send state; "" for progress Ony does not record.
func callState(status, answeredBy string) store.SendState {
	switch status {
	case "in-progress", "answered", "completed":
		if isMachine(answeredBy) {
			return store.SendNoAnswer
		}
		return store.SendAnswered
	case "busy":
		return store.SendBusy
	case "no-answer", "canceled":
		return store.SendNoAnswer
	case "failed":
		return store.SendFailed
	}
	return ""
}
