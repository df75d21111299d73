package twilio

import (
	"context"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/voice"
)

// SMS is the provider's SMS channel (kind sms): it texts voice.SMSBody and reads "Y 4821" replies.
func (p *Provider) SMS() channel.Channel { return &smsChannel{p} }

type smsChannel struct{ p *Provider }

func (*smsChannel) Kind() string       { return voice.SMSKind.Name }
func (c *smsChannel) Provider() string { return c.p.name }

// Notify texts the notification to the recipient; Ref is the message SID.
func (c *smsChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	sid, err := c.p.sendSMS(ctx, n.Recipient.Address, voice.SMSBody(n), c.p.hookURL("sms/status", nil))
	if err != nil {
		return channel.Delivery{}, err
	}
	return channel.Delivery{Ref: sid, State: store.SendSent}, nil
}

// Update does nothing: a text cannot be changed once sent, and another text to say the handoff is
// over would cost money and tell nothing the person needs.
func (*smsChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver: POST /hooks/{name}/sms (inbound texts) and
// POST /hooks/{name}/sms/status (delivery reports).
func (c *smsChannel) Routes(host channel.Host) []channel.Route {
	return []channel.Route{
		{Method: http.MethodPost, Path: "sms", Handler: c.p.verified(host, "sms", c.inbound)},
		{Method: http.MethodPost, Path: "sms/status", Handler: c.p.verified(host, "sms/status", c.status)},
	}
}

// maxAnswer keeps an answer text to one GSM-7 segment.
const maxAnswer = 160

// inbound answers a text: a reply decides, anything else gets the help text.
func (c *smsChannel) inbound(w http.ResponseWriter, r *http.Request, host channel.Host, req request) {
	sid, from := req.params.Get("MessageSid"), req.params.Get("From")
	if sid == "" || from == "" {
		http.Error(w, "not an inbound message", http.StatusBadRequest)
		return
	}
	// Dedupe by the message's own id: a text is handled once, however often it is posted.
	if !c.p.fresh(r.Context(), host, "sms:"+sid) {
		twiml(w)
		return
	}
	if _, err := voice.Phone.Normalize(from); err != nil {
		twiml(w) // a short code or an alphanumeric sender: nobody to answer
		return
	}
	rep, ok := voice.ParseReply(req.params.Get("Body"))
	if !ok {
		twiml(w, "<Message>"+esc(voice.SMSHelp)+"</Message>")
		return
	}
	_, err := host.Decide(r.Context(), channel.Answer{Code: rep.Code, Choice: rep.Choice, Channel: voice.SMSKind.Name, From: from})
	twiml(w, "<Message>"+esc(c.answer(rep.Choice, err))+"</Message>")
}

// answer is the text that answers a reply: what was recorded, or why not.
func (c *smsChannel) answer(choice string, err error) string {
	if err == nil {
		if choice == channel.ChoiceApprove {
			return "ony: approved, thank you."
		}
		return "ony: denied, thank you."
	}
	if p, ok := problem.As(err); ok {
		s := voice.GSM("ony: " + p.Message)
		if utf8.RuneCountInString(s) > maxAnswer {
			s = string([]rune(s)[:maxAnswer-3]) + "..."
		}
		return s
	}
	c.p.log.Warn(c.p.name+": deciding an SMS reply failed", "err", err)
	return "ony: that could not be recorded. Please decide in the console."
}

// status records a delivery report: delivered, or failed (undelivered too). Others are progress.
func (c *smsChannel) status(w http.ResponseWriter, r *http.Request, host channel.Host, req request) {
	sid := req.params.Get("MessageSid")
	if sid == "" {
		http.Error(w, "not a message status", http.StatusBadRequest)
		return
	}
	var st store.SendState
	switch req.params.Get("MessageStatus") {
	case "delivered":
		st = store.SendDelivered
	case "failed", "undelivered":
		st = store.SendFailed
	}
	if st != "" && c.p.fresh(r.Context(), host, "sms/status:"+sid+":"+req.digest) {
		c.p.report(r.Context(), host, sid, st)
	}
	w.WriteHeader(http.StatusNoContent)
}

// report records a state; an unknown ref (a verification code's text, a send from before a
// restore) is expected and only logged.
func (p *Provider) report(ctx context.Context, host channel.Host, ref string, st store.SendState) {
	err := host.Report(ctx, p.name, ref, st)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.log.Debug(p.name+": status for an unknown message or call", "state", st)
	case err != nil:
		p.log.Warn(p.name+": recording a status failed", "state", st, "err", err)
	}
}
