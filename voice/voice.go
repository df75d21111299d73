// Package voice is telephony: people reached by phone, by SMS and by call. The provider clients
// (voice/twilio, which also serves SignalWire, voice/telnyx, voice/plivo), their webhooks under
// /hooks/{provider}/, the media-websocket bridge (voice/media) and the voice agent (voice/agent)
// arrive with the telephony issues; today the kinds are described here so ladders and people's
// settings can name them.
package voice

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/lazyregexp"
)

var phoneRE = lazyregexp.New(`^\+[1-9][0-9]{6,14}$`)

// Phone is a person's phone number in E.164 form. It reaches them only once verified: by a code sent
// to it, or because an operator set it and so vouches for it.
var Phone = &channel.ContactKind{
	Name:  "phone",
	Field: "phone",
	Usage: "phone number for SMS and calls, E.164: +351912345678",
	Normalize: func(s string) (string, error) {
		ph := strings.TrimSpace(s)
		if !phoneRE.MatchString(ph) {
			return "", fmt.Errorf("%s is not a phone number in E.164 form: + then the country code and number, 7 to 15 digits, no spaces (e.g. +14155550123)", MaskPhone(ph))
		}
		return ph, nil
	},
	Mask:   MaskPhone,
	Verify: true,
}

// SMSKind texts people; they answer with a code. It costs money per message, so it is capped.
var SMSKind = channel.Kind{Name: "sms", People: true, Contact: Phone, TakesDecisions: true, Meter: "sms", Failover: true}

// CallKind phones people; they answer on the keypad or to the voice agent. It is capped, and a call
// nobody picks up is redialled if the ladder says so.
var CallKind = channel.Kind{Name: "call", People: true, Contact: Phone, TakesDecisions: true, Meter: "calls", Redials: true, Failover: true}

// MaskPhone shows a phone number as its owner recognises it and nobody else can use it: the "+" and
// the first digit (the start of the country code), then dots, then the last four digits
// ("+1•••••••4821"). Phone numbers are personal data and stay out of errors, logs and printed output.
// Anything that is not an E.164 number (a mistyped one, quoted in an error) keeps only its last two
// characters ("+****56"), and a long input is only described.
func MaskPhone(s string) string {
	if utf8.RuneCountInString(s) > 20 {
		return fmt.Sprintf("(%d characters)", utf8.RuneCountInString(s))
	}
	if digits, ok := strings.CutPrefix(s, "+"); ok && len(digits) >= 7 && len(digits) <= 15 &&
		strings.Trim(digits, "0123456789") == "" {
		return "+" + digits[:1] + strings.Repeat("•", len(digits)-5) + digits[len(digits)-4:]
	}
	r := []rune(s)
	for i := range r {
		if i < len(r)-2 && r[i] != '+' {
			r[i] = '*'
		}
	}
	return string(r)
}
