package app_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/testdb"
)

// TestLogsCarryNoSecrets (issue 17) runs the main flows with every provider on (Slack, Telegram,
// Twilio SMS, a webhook bridge, the summarizer, SMTP, a callback) and the instance's log captured
// at debug level, then looks in it for everything that must never be logged: the payload and the
// secret inside it, the title, summary and decision comment, the device token, the password (and a
// wrong one tried first), the TOTP secret and the code confirmed with it, the full phone number (a
// masked one is fine), the chat ids, and the configured provider credentials.
//
// Tests that already guard narrower paths, not repeated here: server's TestAuditCarriesNoSecrets
// (device token and password in logs) and TestCallbackGuard (callback URLs); cmd/ony's
// TestQuickStartPostgres and TestDoneWhenNewcomerApprovesInConsole (bootstrap password and device
// token in `ony serve`'s log), TestDoneWhenTwilioReplyAndKeypad (phone number and SMS code) and
// TestDemo (phone numbers, password); the voice agent end-to-end tests (transcript canary and the
// call's stream token); config's TestSecretsNotPrinted (configured secrets through slog).
func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			logs := &syncBuf{}
			e := startProviders(t, d, &dialLog{}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			c := newCanaries()
			e.run(ctx, t, &c)
			e.in.Stop(t) // the shutdown's own lines are in too
			out := logs.String()
			if !strings.Contains(out, "handoff finished") {
				t.Fatalf("the log does not show the flows ran, so its silence proves nothing:\n%s", out)
			}
			for what, v := range map[string]string{
				"payload": c.Payload, "secret in the payload": c.Secret, "title": c.Title, "summary": c.Summary,
				"decision comment": c.Comment, "device token": c.DeviceToken, "password": c.Password,
				"wrong password": c.WrongPassword, "TOTP secret": c.TOTPSecret, "phone number": c.Phone,
				"phone number without +": strings.TrimPrefix(c.Phone, "+"), "Slack id": c.SlackID,
				"Telegram id": c.TelegramID,
			} {
				if v != "" && strings.Contains(out, v) {
					t.Errorf("the log holds the %s %q", what, v)
				}
			}
			for _, v := range e.secrets {
				if strings.Contains(out, v) {
					t.Errorf("the log holds a configured credential %q", v)
				}
			}
			// A six-digit code turns up by chance inside request ids, UUIDs and numbers; only one
			// standing on its own counts (as cmd/ony's mustNotContainCode does).
			if regexp.MustCompile(`(^|[^0-9A-Za-z-])` + c.TOTPCode + `($|[^0-9A-Za-z-])`).MatchString(out) {
				t.Errorf("the log holds the TOTP code %s", c.TOTPCode)
			}
		})
	}
}
