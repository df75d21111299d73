// Package testhttp holds what the in-process provider fakes (Slack, Telegram, Telnyx, Twilio) share
// for the webhooks they post to the server under test.
package testhttp

import (
	"net/http"
	"time"
)

// WebhookClient posts the fakes' webhooks on a transport of its own: every httptest.Server.Close
// (another parallel test's fake) closes http.DefaultTransport's idle connections, which broke a post
// that had just taken one ("connection broken: http: CloseIdleConnections called").
var WebhookClient = &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
