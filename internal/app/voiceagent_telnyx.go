package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/voice/agent"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/telnyx"
)

// telnyxMedia builds Telnyx's media websocket handler (issue 16), as voiceAgent does for Twilio and
// SignalWire; nil when voice_agent.url is empty (keypad only). It has its own agent: an Agent holds
// only its configuration, and the concurrency cap is per handler anyway.
func telnyxMedia(c config.VoiceAgent, logger *slog.Logger) (func(channel.Host) http.Handler, error) {
	if !c.Enabled() {
		return nil, nil
	}
	ag, err := agent.New(agent.Config{URL: c.URL, APIKey: c.APIKey.Value(), Model: c.Model, Voice: c.Voice,
		FirstAudio: time.Duration(c.FirstAudio), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("voice_agent: %w", err)
	}
	return func(host channel.Host) http.Handler {
		return &media.Handler{Flavor: media.Telnyx, Logger: logger, MaxCallLength: time.Duration(c.MaxCall), MaxCalls: c.MaxCalls,
			Authorize: func(ctx context.Context, token string) (media.Call, error) { return authorizeStream(ctx, host, token) },
			Run: func(ctx context.Context, call media.Call, s *media.Stream) error {
				return runAgent(ctx, host, ag, telnyx.Name, call, s, logger)
			}}
	}, nil
}
