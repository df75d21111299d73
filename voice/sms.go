package voice

import (
	"strings"
	"unicode/utf8"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
)

// SMS is texted in GSM-7 where possible (one segment is 160 characters, a two-segment message 306)
// and kept to two segments: a longer gist is cut.
const maxSMS = 306

// SMSCode is the code a text shows for the notification's decision token (channel.ShortCode).
func SMSCode(n channel.Notification) string { return channel.ShortCode(auth.HashToken(n.Token)) }

// SMSBody is what a notification is texted as: "ony: [HIGH] deploy: <gist>. Reply Y 4821 to approve,
// N 4821 to deny. <console link>" — the action, the risk, the redacted gist and the code, nothing
// else. When approving needs a second factor, approval is offered only in the console.
func SMSBody(n channel.Notification) string {
	code := SMSCode(n)
	head := "ony: [" + strings.ToUpper(n.Risk) + "] " + GSM(n.Action)
	var tail string
	switch {
	case n.Token == "":
		tail = " Decide in the console: " + n.ConsoleURL
	case n.StepUp:
		tail = " Reply N " + code + " to deny; approve in the console: " + n.ConsoleURL
	default:
		tail = " Reply Y " + code + " to approve, N " + code + " to deny. " + n.ConsoleURL
	}
	gist := strings.TrimRight(GSM(strings.Join(strings.Fields(n.Gist), " ")), ". ")
	room := maxSMS - septets(head) - septets(tail) - 3 // ": " and "."
	if room <= 3 || gist == "" {
		return head + "." + tail
	}
	if utf8.RuneCountInString(gist) > room {
		// Cut to leave room for "..." in place of the final "." (GSM-7 has no "…").
		gist = strings.TrimRight(string([]rune(gist)[:room-2]), ". ") + "..."
		return head + ": " + gist + tail
	}
	return head + ": " + gist + "." + tail
}

// gsmExtended are the GSM 03.38 characters sent as an escape and the character: two septets each
// ("[HIGH]" costs eight). GSM folds them out of agent text, but the head and a link may hold them.
const gsmExtended = "[]{}~^\\|€\f"

// septets is how much of a GSM-7 segment s takes.
func septets(s string) int {
	n := 0
	for _, r := range s {
		n++
		if strings.ContainsRune(gsmExtended, r) {
			n++
		}
	}
	return n
}

// gsmBasic is the GSM 03.38 basic character set (without the escape table): text made of it travels
// 160 characters to a segment instead of UCS-2's 70.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

var gsmFold = strings.NewReplacer("→", "->", "←", "<-", "…", "...", "–", "-", "—", "-", "‘", "'", "’", "'", "“", "\"", "”", "\"",
	"•", "*", "\t", " ", "[", "(", "]", ")", "{", "(", "}", ")", "~", "-", "^", "", "\\", "/", "|", "/", "€", "EUR")

// GSM folds s into the GSM-7 basic set: common punctuation to its ASCII look-alike, anything else
// to "?", so a text stays GSM-7 (and short) whatever the gist holds.
func GSM(s string) string {
	s = gsmFold.Replace(s)
	if strings.Trim(s, gsmBasic) == "" {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(gsmBasic, r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
}

// Reply is what an SMS answer says: a choice (channel.ChoiceApprove or ChoiceDeny) and the code.
type Reply struct {
	Choice, Code string
}

// ParseReply reads "Y 4821", "n4821", "yes 4821" (any case, spaces and punctuation around the parts
// ignored). Anything else is not a reply Ony acts on.
func ParseReply(body string) (Reply, bool) {
	f := strings.FieldsFunc(strings.ToLower(strings.TrimSpace(body)), func(r rune) bool {
		return r == ' ' || r == ',' || r == '.' || r == ':' || r == '-' || r == '\n' || r == '\r' || r == '\t' || r == '!'
	})
	var word, code string
	switch len(f) {
	case 1: // "y4821"
		i := strings.IndexFunc(f[0], func(r rune) bool { return r >= '0' && r <= '9' })
		if i <= 0 {
			return Reply{}, false
		}
		word, code = f[0][:i], f[0][i:]
	case 2:
		word, code = f[0], f[1]
	default:
		return Reply{}, false
	}
	if len(code) != 4 || strings.Trim(code, "0123456789") != "" {
		return Reply{}, false
	}
	switch word {
	case "y", "yes", "approve", "ok":
		return Reply{Choice: channel.ChoiceApprove, Code: code}, true
	case "n", "no", "deny":
		return Reply{Choice: channel.ChoiceDeny, Code: code}, true
	}
	return Reply{}, false
}

// SMSHelp is the answer to a text Ony cannot read.
const SMSHelp = "ony: reply Y or N and the 4-digit code from the message, e.g. Y 4821. Or decide in the console."
