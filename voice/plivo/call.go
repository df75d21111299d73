package plivo

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// Call routes, below /hooks/plivo/. The answer and gather URLs carry the call's decision token (t)
// and the keypad state (s) in their query, which Plivo's signature covers.
const (
	pathCall    = "call"         // answer_url: the first document, ?t=
	pathGather  = "call/gather"  // GetDigits action (and the Redirect after it), ?t=&s=
	pathHangup  = "call/hangup"  // hangup_url: how the call ended
	pathMachine = "call/machine" // machine_detection_url: an answering machine picked up
	pathMedia   = "media"        // the voice agent's media websocket (GET), ?r=request_uuid
)

// ringTimeout is how long a call rings before it counts as not answered, in seconds.
const ringTimeout = 30

// Call is the provider's keypad call channel (kind call).
func (p *Provider) Call() channel.Channel { return &callChannel{p} }

type callChannel struct{ p *Provider }

func (*callChannel) Kind() string     { return voice.CallKind.Name }
func (*callChannel) Provider() string { return Name }

// Notify places the call. Ref is Plivo's request_uuid: the Call API answers with it, before a call
// uuid exists, and every callback of the call carries it as RequestUUID.
func (c *callChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	to := n.Recipient.Address
	if !e164RE.MatchString(to) {
		return channel.Delivery{}, fmt.Errorf("plivo: call: %s is not an E.164 number", voice.MaskPhone(to))
	}
	if n.Token == "" {
		return channel.Delivery{}, errors.New("plivo: call: the notification carries no decision token to answer with")
	}
	req := callParams{
		From: digits(c.p.from), To: digits(to),
		AnswerURL: c.p.hookURL(pathCall, url.Values{"t": {n.Token}}), AnswerMethod: http.MethodPost,
		HangupURL: c.p.hookURL(pathHangup, nil), HangupMethod: http.MethodPost,
		RingTimeout:      ringTimeout,
		MachineDetection: "true", MachineDetectionURL: c.p.hookURL(pathMachine, nil), MachineDetectionMethod: http.MethodPost,
	}
	var out struct {
		// A string for one call; Plivo answers a list when "to" names several, which Ony never does.
		RequestUUID json.RawMessage `json:"request_uuid"`
	}
	if err := c.p.post(ctx, "Call", req, &out); err != nil {
		return channel.Delivery{}, fmt.Errorf("plivo: call %s: %w", voice.MaskPhone(to), err)
	}
	ref := requestUUID(out.RequestUUID)
	if ref == "" {
		return channel.Delivery{}, fmt.Errorf("plivo: call %s: no request_uuid in the reply", voice.MaskPhone(to))
	}
	return channel.Delivery{Ref: ref, State: store.SendSent}, nil
}

// callParams is the Call API's request, with the types plivo-go sends (ring_timeout a number).
type callParams struct {
	From                   string `json:"from"`
	To                     string `json:"to"`
	AnswerURL              string `json:"answer_url"`
	AnswerMethod           string `json:"answer_method"`
	HangupURL              string `json:"hangup_url"`
	HangupMethod           string `json:"hangup_method"`
	RingTimeout            int    `json:"ring_timeout"`
	MachineDetection       string `json:"machine_detection"`
	MachineDetectionURL    string `json:"machine_detection_url"`
	MachineDetectionMethod string `json:"machine_detection_method"`
}

// requestUUID reads request_uuid, a string or a list of one.
func requestUUID(raw json.RawMessage) string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) == 1 {
		return list[0]
	}
	return ""
}

// Update does nothing: the call is over or still deciding.
func (*callChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver.
func (c *callChannel) Routes(host channel.Host) []channel.Route {
	h := func(f func(http.ResponseWriter, *http.Request, channel.Host)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f(w, r, host) })
	}
	rs := []channel.Route{
		{Method: http.MethodPost, Path: pathCall, Handler: h(c.answer)},
		{Method: http.MethodPost, Path: pathGather, Handler: h(c.gather)},
		{Method: http.MethodPost, Path: pathHangup, Handler: h(c.hangup)},
		{Method: http.MethodPost, Path: pathMachine, Handler: h(c.machine)},
	}
	if c.p.media != nil {
		// The websocket authenticates by the call's token in its start message, not by a signature.
		rs = append(rs, channel.Route{Method: http.MethodGet, Path: pathMedia, Handler: withRef(c.p.media(host)), Stream: true})
	}
	return rs
}

type refKey struct{}

// withRef puts the request_uuid the media URL names in the request's context (StreamRef reads it):
// the stream's start names only the call uuid, and the call's send is found by its request_uuid.
func withRef(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ref := r.URL.Query().Get("r"); uuidRE.MatchString(ref) {
			r = r.WithContext(context.WithValue(r.Context(), refKey{}, ref))
		}
		next.ServeHTTP(w, r)
	})
}

// StreamRef is the call's reference (Delivery.Ref, Plivo's request_uuid) for a media stream served
// under ctx, or "" when the stream's URL named none. It names which send a stream's outcome is kept
// on; the stream itself is admitted only by its token.
func StreamRef(ctx context.Context) string {
	ref, _ := ctx.Value(refKey{}).(string)
	return ref
}

var (
	stateRE  = lazyregexp.New(`^(?:[a-z][0-9]|` + voice.StateResume + `)$`)
	digitsRE = lazyregexp.New(`^[0-9*#]{0,12}$`)
)

// GatherQuery reads the query Ony put in an answer or gather URL: the token, and the keypad state
// (empty on the answer URL).
func GatherQuery(rawQuery string) (token, state string, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", errors.New("plivo: unreadable query")
	}
	token, state = q.Get("t"), q.Get("s")
	if token == "" || len(token) > 200 || len(q["t"]) != 1 || len(q["s"]) > 1 {
		return "", "", errors.New("plivo: the URL carries no single token")
	}
	if state != "" && !stateRE.MatchString(state) {
		return "", "", errors.New("plivo: the URL carries an unknown keypad state")
	}
	return token, state, nil
}

// answer serves the first document once someone picked up.
func (c *callChannel) answer(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathCall)
	if !ok {
		return
	}
	token, _, err := GatherQuery(r.URL.RawQuery)
	if err != nil {
		http.Error(w, "malformed URL", http.StatusBadRequest)
		return
	}
	if form.Get("Machine") == "true" {
		c.p.render(w, voice.Machine(), token)
		return
	}
	n, err := host.Recall(r.Context(), token, voice.CallKind.Name)
	if err != nil {
		c.p.renderFirst(w, c.p.goodbye(err), token)
		return
	}
	if c.p.media != nil {
		c.p.renderAgent(w, token, form.Get("RequestUUID"))
		return
	}
	c.p.renderFirst(w, voice.Start(n), token)
}

// gather takes the digits pressed (none when the GetDigits timed out and the Redirect after it ran).
func (c *callChannel) gather(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathGather)
	if !ok {
		return
	}
	token, state, err := GatherQuery(r.URL.RawQuery)
	pressed := form.Get("Digits")
	if err != nil || !digitsRE.MatchString(pressed) {
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	n, err := host.Recall(r.Context(), token, voice.CallKind.Name)
	if err != nil {
		c.p.render(w, c.p.goodbye(err), token)
		return
	}
	// The callee is who the notification went to (rebuilt server-side), not what the request says.
	from := n.Recipient.Address
	if from == "" {
		from = e164(form.Get("To"))
	}
	prompt := voice.Keypad(r.Context(), host, voice.CallKind.Name, token, from, n, state, pressed)
	if err := voice.Record(r.Context(), host, Name, form.Get("RequestUUID"), prompt); err != nil {
		c.p.log.Warn("plivo: recording how a call ended failed", "err", err)
	}
	c.p.render(w, prompt, token)
}

// goodbye ends a call whose token no longer recalls anything: decided already, or unknown.
func (p *Provider) goodbye(err error) voice.Prompt {
	if pr, ok := problem.As(err); ok && pr.Code == "already_final" {
		msg := strings.TrimSuffix(pr.Message, ".")
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:]
		}
		return voice.Prompt{Say: "This is Ony. " + msg + ". Goodbye.", Hangup: true, Outcome: "already_final"}
	}
	if _, ok := problem.As(err); !ok {
		p.log.Warn("plivo: recalling a call's notification failed")
	}
	return voice.Prompt{Say: "This is Ony. There is nothing to decide on this call any more. Goodbye.", Hangup: true, Outcome: "refused"}
}

// CallEnd is what a hangup_url request says about how a call ended.
type CallEnd struct {
	Ref, CallUUID, Status, Cause string
	// Answered is whether someone (or something) picked up: Plivo sends an AnswerTime then.
	Answered bool
}

// ParseHangup reads the parameters Plivo posts to a hangup_url.
func ParseHangup(form map[string][]string) (CallEnd, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	e := CallEnd{Ref: get("RequestUUID"), CallUUID: get("CallUUID"), Status: strings.ToLower(get("CallStatus")), Cause: strings.ToUpper(get("HangupCause"))}
	if e.Ref == "" {
		e.Ref = get("ALegRequestUUID")
	}
	if e.Ref == "" || len(e.Ref) > 64 || e.Status == "" {
		return CallEnd{}, errors.New("plivo: hangup callback without RequestUUID or CallStatus")
	}
	e.Answered = get("AnswerTime") != "" || (get("BillDuration") != "" && get("BillDuration") != "0")
	return e, nil
}

// State is the send state a call's end means, and false when it says nothing new.
func (e CallEnd) State() (store.SendState, bool) {
	switch {
	case e.Status == "busy" || e.Cause == "USER_BUSY":
		return store.SendBusy, true
	case e.Status == "no-answer" || e.Status == "timeout" || e.Status == "cancel" ||
		e.Cause == "NO_ANSWER" || e.Cause == "ALLOTTED_TIMEOUT" || e.Cause == "NO_USER_RESPONSE" || e.Cause == "ORIGINATOR_CANCEL":
		return store.SendNoAnswer, true
	case e.Status == "failed":
		return store.SendFailed, true
	case e.Status == "completed":
		if e.Answered {
			return store.SendAnswered, true
		}
		return store.SendNoAnswer, true
	}
	return "", false
}

func (c *callChannel) hangup(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathHangup)
	if !ok {
		return
	}
	end, err := ParseHangup(form)
	if err != nil {
		http.Error(w, "malformed callback", http.StatusBadRequest)
		return
	}
	state, ok := end.State()
	if !ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	// A machine that picked up was reported no_answer already; its hangup is not a person answering.
	if state == store.SendAnswered && !c.p.fresh(r.Context(), host, "machine:"+end.Ref) {
		w.WriteHeader(http.StatusOK)
		return
	}
	c.p.report(w, r, host, end.Ref, state)
}

// machine hears the machine detection: a machine is hung up on (it heard nothing but the first
// words, if that) and the call counts as not reached.
func (c *callChannel) machine(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathMachine)
	if !ok {
		return
	}
	ref, callID := form.Get("RequestUUID"), form.Get("CallUUID")
	if ref == "" || len(ref) > 64 || len(callID) > 64 || !uuidRE.MatchString(callID) {
		http.Error(w, "malformed callback", http.StatusBadRequest)
		return
	}
	if form.Get("Machine") != "true" {
		w.WriteHeader(http.StatusOK)
		return
	}
	c.p.fresh(r.Context(), host, "machine:"+ref)
	if err := c.p.do(r.Context(), http.MethodDelete, "Call/"+callID, nil, nil); err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound { // 404: it hung up already
			c.p.log.Warn("plivo: hanging up on a machine failed", "err", err)
		}
	}
	c.p.report(w, r, host, ref, store.SendNoAnswer)
}

var uuidRE = lazyregexp.New(`^[0-9a-fA-F-]{8,64}$`)

// XML verbs, the few Ony uses.
type (
	speak struct {
		XMLName  xml.Name `xml:"Speak"`
		Language string   `xml:"language,attr"`
		Text     string   `xml:",chardata"`
	}
	getDigits struct {
		XMLName     xml.Name `xml:"GetDigits"`
		Action      string   `xml:"action,attr"`
		Method      string   `xml:"method,attr"`
		NumDigits   int      `xml:"numDigits,attr"`
		Timeout     int      `xml:"timeout,attr"`
		Retries     int      `xml:"retries,attr"`
		ValidDigits string   `xml:"validDigits,attr"`
		Redirect    string   `xml:"redirect,attr"`
		// Log false keeps the digits (a TOTP code) out of Plivo's debug logs.
		Log   string `xml:"log,attr"`
		Speak speak
	}
	redirect struct {
		XMLName xml.Name `xml:"Redirect"`
		Method  string   `xml:"method,attr"`
		URL     string   `xml:",chardata"`
	}
	hangupVerb struct {
		XMLName xml.Name `xml:"Hangup"`
	}
)

// Machine detection runs beside the document, not before it: the first document waits, silent, while
// the callee speaks (a person's "Hello?" ends in a pause, a voicemail greeting does not), up to
// firstWait seconds — past Plivo's default 5 s detection time, so a machine is hung up on (route
// call/machine) before it hears what the call is about.
const (
	firstWait  = 6
	minSilence = 1500 // ms of silence after "Hello?" that lets the script start
)

// The voice agent's stream: µ-law 8 kHz both ways, the call kept on the Stream until the socket
// closes, then the next verb (the Redirect to the keypad) runs.
type stream struct {
	XMLName       xml.Name `xml:"Stream"`
	Bidirectional bool     `xml:"bidirectional,attr"`
	KeepCallAlive bool     `xml:"keepCallAlive,attr"`
	ContentType   string   `xml:"contentType,attr"`
	ExtraHeaders  string   `xml:"extraHeaders,attr"`
	URL           string   `xml:",chardata"`
}

// renderAgent is the answer document of the voice agent: the silent wait (machine detection hangs up
// on a voicemail before the model says anything), the stream with the call's token in its extra
// headers, and a Redirect to the keypad in the resume state for when the stream ends — the model
// failed (the keypad says the script), or the handoff was decided (the keypad says goodbye).
func (p *Provider) renderAgent(w http.ResponseWriter, token, requestUUID string) {
	var q url.Values
	if uuidRE.MatchString(requestUUID) {
		q = url.Values{"r": {requestUUID}}
	}
	ws := "ws" + strings.TrimPrefix(p.hookURL(pathMedia, q), "http") // https → wss, http → ws
	writeXML(w, response{Verbs: []any{
		wait{Length: firstWait, Silence: true, MinSilence: minSilence},
		stream{Bidirectional: true, KeepCallAlive: true, ContentType: "audio/x-mulaw;rate=8000", ExtraHeaders: "t=" + token, URL: ws},
		redirect{Method: http.MethodPost, URL: p.hookURL(pathGather, url.Values{"t": {token}, "s": {voice.StateResume}})},
	}})
}

type wait struct {
	XMLName    xml.Name `xml:"Wait"`
	Length     int      `xml:"length,attr"`
	Silence    bool     `xml:"silence,attr"`
	MinSilence int      `xml:"minSilence,attr"`
}

// renderFirst is render for the answer document: the silent wait, then the prompt.
func (p *Provider) renderFirst(w http.ResponseWriter, pr voice.Prompt, token string) {
	p.renderDoc(w, pr, token, wait{Length: firstWait, Silence: true, MinSilence: minSilence})
}

// render says a Prompt in Plivo XML: GetDigits around the Speak, and a Redirect to the same action
// after it, which Plivo follows without Digits when nothing was pressed; or Speak then Hangup.
func (p *Provider) render(w http.ResponseWriter, pr voice.Prompt, token string) {
	p.renderDoc(w, pr, token)
}

func (p *Provider) renderDoc(w http.ResponseWriter, pr voice.Prompt, token string, first ...any) {
	doc := response{Verbs: first}
	if pr.Hangup || pr.Gather <= 0 {
		if pr.Say != "" {
			doc.Verbs = append(doc.Verbs, speak{Language: "en-US", Text: pr.Say})
		}
		doc.Verbs = append(doc.Verbs, hangupVerb{})
		writeXML(w, doc)
		return
	}
	action := p.hookURL(pathGather, url.Values{"t": {token}, "s": {pr.State}})
	timeout := 7
	if pr.Gather > 1 {
		timeout = 20 // time to open the authenticator app
	}
	doc.Verbs = append(doc.Verbs,
		getDigits{Action: action, Method: http.MethodPost, NumDigits: pr.Gather, Timeout: timeout, Retries: 1,
			ValidDigits: "0123456789", Redirect: "true", Log: "false", Speak: speak{Language: "en-US", Text: pr.Say}},
		redirect{Method: http.MethodPost, URL: action})
	writeXML(w, doc)
}
