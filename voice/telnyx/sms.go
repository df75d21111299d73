package telnyx

import (
	"context"
	"encoding/json"
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

// SMS is the provider's sms channel.
func (p *Provider) SMS() channel.Channel { return &smsChannel{p} }

type smsChannel struct{ p *Provider }

var _ channel.Receiver = (*smsChannel)(nil)

func (*smsChannel) Kind() string     { return voice.SMSKind.Name }
func (*smsChannel) Provider() string { return Name }

// Notify texts the notification (voice.SMSBody) and asks Telnyx to report its delivery.
func (c *smsChannel) Notify(ctx context.Context, n channel.Notification) (channel.Delivery, error) {
	id, err := c.p.sendMessage(ctx, n.Recipient.Address, voice.SMSBody(n), c.p.hookURL("sms"))
	if err != nil {
		return channel.Delivery{}, err
	}
	return channel.Delivery{Ref: id, State: store.SendSent}, nil
}

// Update does nothing: a text cannot be edited, and a second one for the outcome would cost money
// and say what the person already knows or will see in the console.
func (*smsChannel) Update(context.Context, channel.Update) error { return nil }

// Routes implements channel.Receiver: POST /hooks/telnyx/sms takes messaging events (inbound texts,
// delivery reports).
func (c *smsChannel) Routes(host channel.Host) []channel.Route {
	return []channel.Route{{Method: http.MethodPost, Path: "sms", Handler: c.p.hook(host, smsKey, func(ctx context.Context, ev Event) {
		c.onEvent(ctx, host, ev)
	})}}
}

// Message is the part of a messaging event's payload Ony reads.
type Message struct {
	ID        string `json:"id"`
	Direction string `json:"direction"`
	From      struct {
		PhoneNumber string `json:"phone_number"`
	} `json:"from"`
	To []struct {
		PhoneNumber string `json:"phone_number"`
		Status      string `json:"status"`
	} `json:"to"`
	Text string `json:"text"`
}

// ParseMessage decodes a messaging event's payload; a message without an id is malformed.
func ParseMessage(payload []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(payload, &m); err != nil {
		return Message{}, fmt.Errorf("telnyx: message: %w", err)
	}
	if m.ID == "" {
		return Message{}, errors.New("telnyx: message: no id")
	}
	return m, nil
}

// smsKey dedupes an inbound text by its message id (a redelivery may come as a new event), other
// events by their event id.
func smsKey(ev Event) string {
	if ev.Type == "message.received" {
		if m, err := ParseMessage(ev.Payload); err == nil {
			return "sms:" + m.ID
		}
	}
	return "event:" + ev.ID
}

func (c *smsChannel) onEvent(ctx context.Context, host channel.Host, ev Event) {
	m, err := ParseMessage(ev.Payload)
	if err != nil {
		c.p.log.Warn("telnyx: malformed message event dropped", "event", ev.Type)
		return
	}
	switch ev.Type {
	case "message.received":
		c.onReply(ctx, host, m)
	case "message.finalized":
		c.onStatus(ctx, host, m)
	default:
		c.p.log.Debug("telnyx: messaging event ignored", "event", ev.Type)
	}
}

// onReply decides on "Y 4821" from the number it was sent to, and answers the sender either way.
func (c *smsChannel) onReply(ctx context.Context, host channel.Host, m Message) {
	from, err := voice.Phone.Normalize(m.From.PhoneNumber)
	if err != nil || m.Direction == "outbound" {
		// A short code or an alphanumeric sender cannot be a person's phone, nor be answered.
		c.p.log.Debug("telnyx: text from no phone number ignored")
		return
	}
	answer := smsAnswer(ctx, host, from, m.Text)
	if err := c.p.SendSMS(ctx, from, answer); err != nil {
		c.p.log.Warn("telnyx: reply text failed", "to", voice.MaskPhone(from), "err", err)
	}
}

// smsAnswer decides on a text's body through host (voice.ParseReply) and says what to text back.
func smsAnswer(ctx context.Context, host channel.Host, from, body string) string {
	r, ok := voice.ParseReply(body)
	if !ok {
		return voice.SMSHelp
	}
	if _, err := host.Decide(ctx, channel.Answer{Code: r.Code, Choice: r.Choice, Channel: voice.SMSKind.Name, From: from}); err != nil {
		if p, ok := problem.As(err); ok {
			return shortText("ony: " + voice.GSM(p.Message))
		}
		return "ony: Ony could not record that. Decide in the console."
	}
	if r.Choice == channel.ChoiceApprove {
		return "ony: approved, thank you."
	}
	return "ony: denied, thank you."
}

// shortText keeps an answer to one GSM-7 segment.
func shortText(s string) string {
	if utf8.RuneCountInString(s) <= 160 {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:157])) + "..."
}

// onStatus reports a delivery receipt: delivered or failed; anything else (delivery unconfirmed) says nothing.
func (c *smsChannel) onStatus(ctx context.Context, host channel.Host, m Message) {
	var state store.SendState
	for _, to := range m.To {
		switch to.Status {
		case "delivered":
			state = store.SendDelivered
		case "sending_failed", "delivery_failed":
			state = store.SendFailed
		}
	}
	if state == "" {
		return
	}
	report(ctx, c.p, host, m.ID, state)
}

// report tells host what became of something sent; an unknown reference is somebody else's message
// or call (a number shared with another system), not an error worth more than a debug line.
func report(ctx context.Context, p *Provider, host channel.Host, ref string, state store.SendState) {
	if err := host.Report(ctx, Name, ref, state); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			p.log.Debug("telnyx: status for an unknown reference", "state", state)
			return
		}
		p.log.Warn("telnyx: report failed", "state", state, "err", err)
	}
}
