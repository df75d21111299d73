package plivo

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// SMS routes, below /hooks/plivo/.
const (
	pathSMS       = "sms"        // the number's message_url: inbound texts
	pathSMSStatus = "sms/status" // the url of each message Ony sends: delivery reports
)

// SMS is the provider's SMS channel (kind sms).
func (p *Provider) SMS() channel.Channel { return &smsChannel{p} }

type smsChannel struct{ p *Provider }

func (*smsChannel) Kind() string     { return voice.SMSKind.Name }
func (*smsChannel) Provider() string { return Name }

// Notify texts voice.SMSBody(n) to the recipient; Ref is Plivo's message_uuid, which the delivery
// report names.
func (c *smsChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	id, err := c.p.sendSMS(ctx, n.Recipient.Address, voice.SMSBody(n), c.p.hookURL(pathSMSStatus, nil))
	if err != nil {
		return channel.Delivery{}, err
	}
	return channel.Delivery{Ref: id, State: store.SendSent}, nil
}

// Update does nothing: a text cannot be changed once sent, and a second text for every decision
// would cost money and say little.
func (*smsChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver.
func (c *smsChannel) Routes(host channel.Host) []channel.Route {
	return []channel.Route{
		{Method: http.MethodPost, Path: pathSMS, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.inbound(w, r, host) })},
		{Method: http.MethodPost, Path: pathSMSStatus, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.status(w, r, host) })},
	}
}

// Inbound is a text Plivo received for Ony's number.
type Inbound struct {
	From, To, Text, MessageUUID string
}

// ParseInbound reads the parameters Plivo posts to a message_url. From and To come back in E.164;
// a message without an id or with a sender that is not a phone number is an error.
func ParseInbound(form map[string][]string) (Inbound, error) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	in := Inbound{From: e164(get("From")), To: e164(get("To")), Text: get("Text"), MessageUUID: get("MessageUUID")}
	if in.MessageUUID == "" || len(in.MessageUUID) > 64 {
		return Inbound{}, errors.New("plivo: inbound SMS without a MessageUUID")
	}
	if in.From == "" {
		return Inbound{}, errors.New("plivo: inbound SMS from something that is not a phone number")
	}
	if t := get("Type"); t != "" && t != "sms" {
		return Inbound{}, fmt.Errorf("plivo: inbound message of type %.10q", t)
	}
	return in, nil
}

func (c *smsChannel) inbound(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathSMS)
	if !ok {
		return
	}
	in, err := ParseInbound(form)
	if err != nil {
		http.Error(w, "malformed message", http.StatusBadRequest)
		return
	}
	if !c.p.fresh(r.Context(), host, "sms:"+in.MessageUUID) {
		writeXML(w, response{}) // Plivo's retry of a text already answered
		return
	}
	text := c.answer(r.Context(), host, in)
	to := in.To
	if to == "" {
		to = c.p.from
	}
	writeXML(w, response{Message: &message{Src: digits(to), Dst: digits(in.From), Type: "sms", Text: text}})
}

// answer decides on a reply and says what to text back.
func (c *smsChannel) answer(ctx context.Context, host channel.Host, in Inbound) string {
	rep, ok := voice.ParseReply(in.Text)
	if !ok {
		return voice.SMSHelp
	}
	_, err := host.Decide(ctx, channel.Answer{Code: rep.Code, Choice: rep.Choice, Channel: voice.SMSKind.Name, From: in.From})
	if err == nil {
		if rep.Choice == channel.ChoiceApprove {
			return "ony: approved, thank you."
		}
		return "ony: denied, thank you."
	}
	if p, ok := problem.As(err); ok {
		return short("ony: " + voice.GSM(p.Message))
	}
	c.p.log.Warn("plivo: deciding an SMS reply failed", "from", voice.MaskPhone(in.From))
	return "ony: that could not be recorded. Please decide in the console."
}

// short keeps a reply to one GSM-7 segment.
func short(s string) string {
	if utf8.RuneCountInString(s) <= 160 {
		return s
	}
	return string([]rune(s)[:157]) + "..."
}

// status takes a delivery report: delivered, or failed for good.
func (c *smsChannel) status(w http.ResponseWriter, r *http.Request, host channel.Host) {
	form, ok := c.p.signed(w, r, host, pathSMSStatus)
	if !ok {
		return
	}
	id, st := form.Get("MessageUUID"), form.Get("Status")
	if id == "" || len(id) > 64 {
		http.Error(w, "malformed report", http.StatusBadRequest)
		return
	}
	var state store.SendState
	switch strings.ToLower(st) {
	case "delivered":
		state = store.SendDelivered
	case "failed", "undelivered", "rejected":
		state = store.SendFailed
	default: // queued, sent: nothing learned yet
		w.WriteHeader(http.StatusOK)
		return
	}
	c.p.report(w, r, host, id, state)
}

// report tells Ony a later outcome; an unknown reference (a text Ony did not send, or one already
// purged) is acknowledged, anything else is answered 500 so Plivo retries.
func (p *Provider) report(w http.ResponseWriter, r *http.Request, host channel.Host, ref string, state store.SendState) {
	if err := host.Report(r.Context(), Name, ref, state); err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.Warn("plivo: report failed", "state", state, "err", err)
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// response is a Plivo XML document.
type response struct {
	XMLName xml.Name `xml:"Response"`
	Message *message `xml:"Message,omitempty"`
	Verbs   []any
}

type message struct {
	Src  string `xml:"src,attr"`
	Dst  string `xml:"dst,attr"`
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

func writeXML(w http.ResponseWriter, doc response) {
	b, err := xml.Marshal(doc)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write(append([]byte(xml.Header), b...))
}
