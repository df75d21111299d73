package voice

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/problem"
)

// The keypad flow is the same on every provider: they differ only in how they say a Prompt and
// collect digits (TwiML <Gather>, Plivo <GetDigits>, Telnyx gather commands). State travels in the
// provider's action URL, which Ony writes and the provider signs back, so any replica can continue.

// Prompt is what the call does next: say Say, then collect Gather digits (0: none) and post them to
// the action with State, or hang up. Outcome is set when the call is over ("approved", "denied",
// "stepup_failed", "no_input", "already_final", "refused").
type Prompt struct {
	Say     string
	Gather  int
	State   string
	Hangup  bool
	Outcome string
}

// Keypad states: the menu (with how many times nothing was pressed) and the n-th TOTP attempt.
const (
	stateMenu = "m"
	stateTOTP = "t"
	// maxSilence menus with no key pressed end the call; maxTOTP wrong codes end it too.
	maxSilence = 3
	maxTOTP    = 3
)

// StateResume is the state a call document resumes the keypad in when the voice agent's stream
// ended undecided: the menu, as if nothing had been pressed (the script and menu again; a decided
// handoff just says goodbye, since the provider's route recalls it first).
const StateResume = "r"

// Script is what the callee hears first: who asks, the action, its risk and the redacted gist.
func Script(n channel.Notification) string {
	who := "An agent"
	if n.Agent != "" {
		who = "The agent " + n.Agent
	}
	s := fmt.Sprintf("This is Ony. %s asks to %s. Risk: %s.", who, spoken(n.Action), n.Risk)
	if g := strings.TrimSpace(n.Gist); g != "" {
		s += " " + g
	}
	return s
}

func menuText(n channel.Notification) string {
	return "Press 1 to approve, 2 to deny, 9 to repeat."
}

// Start is the call's first prompt, once a person (not a machine) answered.
func Start(n channel.Notification) Prompt {
	return Prompt{Say: Script(n) + " " + menuText(n), Gather: 1, State: stateMenu + "0"}
}

// Machine is the prompt for an answering machine: hang up without leaving any detail.
func Machine() Prompt { return Prompt{Hangup: true, Outcome: "machine"} }

// Keypad takes the digits a callee pressed in state and decides through host when they chose:
// token is the call's decision token, from the number called (the callee), n what the call is
// about (host.Recall). Empty digits mean the gather timed out.
func Keypad(ctx context.Context, host channel.Host, kind, token, from string, n channel.Notification, state, digits string) Prompt {
	step, count := parseState(state)
	switch step {
	case stateTOTP:
		if len(digits) != 6 {
			// Silence or a short entry counts as a wrong code, so the call cannot loop forever.
			if count+1 >= maxTOTP {
				return done("That is not 6 digits. That was the third try; nothing was decided. Goodbye.", "stepup_failed")
			}
			return totpPrompt(count+1, "That is not 6 digits. ")
		}
		_, err := host.Decide(ctx, channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: kind, From: from, TOTP: digits})
		if err == nil {
			return done("Approved. Thank you, goodbye.", "approved")
		}
		if p, ok := problem.As(err); ok && isWrongCode(p.Code) {
			if count+1 >= maxTOTP {
				return done("That code is not valid. That was the third wrong code; nothing was decided. Goodbye.", "stepup_failed")
			}
			return totpPrompt(count+1, "That code is not valid. ")
		}
		return refused(err)
	default: // the menu
		switch digits {
		case "1":
			if n.StepUp {
				return totpPrompt(0, "")
			}
			return decide(ctx, host, channel.Answer{Token: token, Choice: channel.ChoiceApprove, Channel: kind, From: from}, "Approved.", "approved")
		case "2":
			return decide(ctx, host, channel.Answer{Token: token, Choice: channel.ChoiceDeny, Channel: kind, From: from}, "Denied.", "denied")
		case "9":
			return Start(n)
		case "":
			if count+1 >= maxSilence {
				return done("Nothing was pressed; nothing was decided. Goodbye.", "no_input")
			}
			p := Start(n)
			p.State = stateMenu + strconv.Itoa(count+1)
			return p
		default:
			p := Prompt{Say: "Sorry, that key does nothing here. " + menuText(n), Gather: 1, State: stateMenu + strconv.Itoa(count)}
			return p
		}
	}
}

func totpPrompt(attempt int, prefix string) Prompt {
	return Prompt{Say: prefix + "Approving needs your authenticator code. Enter the 6 digits now.", Gather: 6, State: stateTOTP + strconv.Itoa(attempt)}
}

func decide(ctx context.Context, host channel.Host, a channel.Answer, said, outcome string) Prompt {
	if _, err := host.Decide(ctx, a); err != nil {
		return refused(err)
	}
	return done(said+" Thank you, goodbye.", outcome)
}

// refused says why a choice did not count (already decided, expired, ...) and ends the call.
func refused(err error) Prompt {
	if p, ok := problem.As(err); ok {
		outcome := "refused"
		if p.Code == "already_final" {
			outcome = "already_final"
		}
		msg := strings.TrimSuffix(p.Message, ".")
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:] // said as a sentence
		}
		return done(msg+". Goodbye.", outcome)
	}
	return done("Ony could not record that. Please decide in the console. Goodbye.", "error")
}

func done(say, outcome string) Prompt { return Prompt{Say: say, Hangup: true, Outcome: outcome} }

// isWrongCode is whether a step-up refusal is a wrong or reused code (the callee may try again)
// rather than, say, a throttle or no enrolment (which end the call).
func isWrongCode(code string) bool {
	return code == "invalid_totp"
}

func parseState(s string) (string, int) {
	if s == "" || s == StateResume {
		return stateMenu, 0
	}
	n, err := strconv.Atoi(s[1:])
	if err != nil || n < 0 || n > 9 {
		n = 0
	}
	if s[:1] == stateTOTP {
		return stateTOTP, n
	}
	return stateMenu, n
}

// spoken turns an action name into words a text-to-speech voice reads well: "db.migrate" → "db migrate".
func spoken(action string) string {
	return strings.NewReplacer(".", " ", "_", " ", "-", " ", "/", " ").Replace(action)
}

// Record keeps how an answered call ended on its send (host.Outcome), when p ends it; ref is the
// provider's reference for the call (Delivery.Ref). A machine is not recorded: the provider reports
// that call as not answered.
func Record(ctx context.Context, host channel.Host, provider, ref string, p Prompt) error {
	if p.Outcome == "" || p.Outcome == "machine" || ref == "" {
		return nil
	}
	return host.Outcome(ctx, provider, ref, p.Outcome)
}
