package voice_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/voice"
)

const testToken = "ony_dt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func smsNote() channel.Notification {
	return channel.Notification{Action: "deploy", Risk: "high", Gist: "deploy api v2 to prod", Token: testToken,
		ConsoleURL: "https://ony.test/console/handoffs/h1"}
}

const (
	gsmBasic    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "[]{}~^\\|€\f"
)

// isGSM is whether s is GSM-7 (the GSM 03.38 basic set and its escapes), so it travels 160
// septets a segment instead of UCS-2's 70 characters.
func isGSM(s string) bool { return strings.Trim(s, gsmBasic+gsmExtended) == "" }

// septets is how much of a GSM-7 segment s takes: an escaped character counts twice.
func septets(s string) int {
	n := utf8.RuneCountInString(s)
	for _, r := range s {
		if strings.ContainsRune(gsmExtended, r) {
			n++
		}
	}
	return n
}

func TestSMSCode(t *testing.T) {
	t.Parallel()
	n := smsNote()
	code := voice.SMSCode(n)
	if code != channel.ShortCode(auth.HashToken(testToken)) || len(code) != 4 || strings.Trim(code, "0123456789") != "" {
		t.Fatalf("SMSCode = %q", code)
	}
}

func TestSMSBody(t *testing.T) {
	t.Parallel()
	code := voice.SMSCode(smsNote())
	for _, c := range []struct {
		name string
		edit func(*channel.Notification)
		want string
	}{
		{"approve or deny", func(*channel.Notification) {},
			"ony: [HIGH] deploy: deploy api v2 to prod. Reply Y " + code + " to approve, N " + code + " to deny. https://ony.test/console/handoffs/h1"},
		{"step-up: deny only, approve in the console", func(n *channel.Notification) { n.StepUp = true },
			"ony: [HIGH] deploy: deploy api v2 to prod. Reply N " + code + " to deny; approve in the console: https://ony.test/console/handoffs/h1"},
		{"no token: the console only", func(n *channel.Notification) { n.Token = "" },
			"ony: [HIGH] deploy: deploy api v2 to prod. Decide in the console: https://ony.test/console/handoffs/h1"},
		{"no gist", func(n *channel.Notification) { n.Gist = "  " },
			"ony: [HIGH] deploy. Reply Y " + code + " to approve, N " + code + " to deny. https://ony.test/console/handoffs/h1"},
		{"whitespace and a final dot", func(n *channel.Notification) { n.Gist = "deploy\n\tapi  v2." },
			"ony: [HIGH] deploy: deploy api v2. Reply Y " + code + " to approve, N " + code + " to deny. https://ony.test/console/handoffs/h1"},
		{"folded to GSM-7", func(n *channel.Notification) {
			n.Gist = "a → b “quoted” [x] 10€ 🚀"
			n.Action = "db—migrate"
		},
			"ony: [HIGH] db-migrate: a -> b \"quoted\" (x) 10EUR ?. Reply Y " + code + " to approve, N " + code + " to deny. https://ony.test/console/handoffs/h1"},
		{"risk in capitals", func(n *channel.Notification) { n.Risk = "critical" },
			"ony: [CRITICAL] deploy: deploy api v2 to prod. Reply Y " + code + " to approve, N " + code + " to deny. https://ony.test/console/handoffs/h1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := smsNote()
			c.edit(&n)
			got := voice.SMSBody(n)
			if got != c.want {
				t.Fatalf("SMSBody:\n got %q\nwant %q", got, c.want)
			}
			if !isGSM(got) || septets(got) > 306 {
				t.Fatalf("not two GSM-7 segments: %q", got)
			}
			if strings.Contains(got, testToken) {
				t.Fatal("the body carries the token")
			}
		})
	}
}

// A long gist is cut so the text stays within two GSM-7 segments (306 characters), with "..." where
// it was cut, and the reply instructions and link are never cut.
func TestSMSBodySegments(t *testing.T) {
	t.Parallel()
	for _, gist := range []string{
		strings.Repeat("word ", 100),
		strings.Repeat("é", 400),
		strings.Repeat("日本", 200), // not GSM: folded to "?"
		strings.Repeat("a…", 300), // each "…" folds to three characters
		strings.Repeat("a.", 200),
	} {
		n := smsNote()
		n.Gist = gist
		got := voice.SMSBody(n)
		if l := septets(got); l > 306 || l < 300 {
			t.Errorf("gist %.10q: %d septets; want two full segments at most (306)", gist, l)
		}
		if !isGSM(got) {
			t.Errorf("gist %.10q: not GSM-7: %q", gist, got)
		}
		if !strings.HasSuffix(got, "... Reply Y "+voice.SMSCode(n)+" to approve, N "+voice.SMSCode(n)+" to deny. "+n.ConsoleURL) {
			t.Errorf("gist %.10q: cut badly: %q", gist, got)
		}
		if !strings.HasPrefix(got, "ony: [HIGH] deploy: ") {
			t.Errorf("gist %.10q: head %q", gist, got[:30])
		}
	}
	// A console link so long no gist fits still leaves the instructions whole.
	n := smsNote()
	n.ConsoleURL = "https://ony.test/" + strings.Repeat("x", 300)
	if got := voice.SMSBody(n); !strings.HasPrefix(got, "ony: [HIGH] deploy. Reply Y ") || strings.Contains(got, "api") {
		t.Errorf("long link: %q", got)
	}
}

func TestGSM(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain ASCII 0-9 @ $ _":   "plain ASCII 0-9 @ $ _",
		"Ça coûte 5€ – {ok}":      "Ça co?te 5EUR - (ok)",
		"tab\there ~ ^ \\ |":      "tab here -  / /",
		"emoji 🚀":                 "emoji ?",
		"ÄÖÑÜäöñüà ß ΔΩ":          "ÄÖÑÜäöñüà ß ΔΩ",
		"":                        "",
		"‘single’ “double” • dot": "'single' \"double\" * dot",
	} {
		if got := voice.GSM(in); got != want {
			t.Errorf("GSM(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseReply(t *testing.T) {
	t.Parallel()
	approve := func(code string) voice.Reply { return voice.Reply{Choice: channel.ChoiceApprove, Code: code} }
	deny := func(code string) voice.Reply { return voice.Reply{Choice: channel.ChoiceDeny, Code: code} }
	for _, c := range []struct {
		in   string
		want voice.Reply
		ok   bool
	}{
		{"Y 4821", approve("4821"), true},
		{"y4821", approve("4821"), true},
		{"yes 0007", approve("0007"), true},
		{"  YES, 4821! ", approve("4821"), true},
		{"Approve 4821", approve("4821"), true},
		{"ok 4821.", approve("4821"), true},
		{"Y-4821", approve("4821"), true},
		{"y\n4821", approve("4821"), true},
		{"N 4821", deny("4821"), true},
		{"n4821", deny("4821"), true},
		{"No: 4821", deny("4821"), true},
		{"deny 4821", deny("4821"), true},
		{"", voice.Reply{}, false},
		{"Y", voice.Reply{}, false},
		{"4821", voice.Reply{}, false},
		{"Y 482", voice.Reply{}, false},
		{"Y 48211", voice.Reply{}, false},
		{"Y 48a1", voice.Reply{}, false},
		{"Y 4821 please", voice.Reply{}, false},
		{"maybe 4821", voice.Reply{}, false},
		{"yy 4821", voice.Reply{}, false},
		{"4821 Y", voice.Reply{}, false},
		{"Y ４８２１", voice.Reply{}, false},
		{"y4821y", voice.Reply{}, false},
		{"STOP", voice.Reply{}, false},
	} {
		got, ok := voice.ParseReply(c.in)
		if ok != c.ok || got != c.want {
			t.Errorf("ParseReply(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// FuzzParseReply: whatever a text says, a reply Ony acts on has a choice it knows and a 4-digit code,
// and the canonical form of it reads back the same.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"Y 4821", "n4821", "yes, 0000!", "deny 9999", "", "Y", "4821", "y 48٢1", "Y ４８２１", "\xff 1234",
		"ok\t1234", "no-no 1234", "Y 4821 4821", strings.Repeat("y", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r, ok := voice.ParseReply(body)
		if !ok {
			if r != (voice.Reply{}) {
				t.Fatalf("ParseReply(%q) = %+v with ok false", body, r)
			}
			return
		}
		if r.Choice != channel.ChoiceApprove && r.Choice != channel.ChoiceDeny {
			t.Fatalf("ParseReply(%q): choice %q", body, r.Choice)
		}
		if len(r.Code) != 4 || strings.Trim(r.Code, "0123456789") != "" {
			t.Fatalf("ParseReply(%q): code %q", body, r.Code)
		}
		word := map[string]string{channel.ChoiceApprove: "Y", channel.ChoiceDeny: "N"}[r.Choice]
		if again, ok := voice.ParseReply(word + " " + r.Code); !ok || again != r {
			t.Fatalf("canonical %q reads %+v, %v; want %+v", word+" "+r.Code, again, ok, r)
		}
	})
}

func TestSMSHelpIsGSM(t *testing.T) {
	t.Parallel()
	if !isGSM(voice.SMSHelp) || len(voice.SMSHelp) > 160 {
		t.Fatalf("SMSHelp is not one GSM-7 segment: %q", voice.SMSHelp)
	}
}
