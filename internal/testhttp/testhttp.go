// Package testhttp holds the HTTP client that tests and the in-process provider fakes (Slack,
// Telegram, Plivo, Telnyx, Twilio) use to reach a test's server.
package testhttp

import (
	"net/http"
	"time"
)

// Client runs on a transport of its own: every httptest.Server.Close (another parallel test's server)
// closes http.DefaultTransport's idle connections, which broke a request that had just taken one
// ("connection broken: http: CloseIdleConnections called"); the transport does not retry that error.
var Client = &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
