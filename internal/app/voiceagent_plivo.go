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
	"github.com/ony-ai/ony/voice/plivo"
)

// plivoAgent builds the media websocket handler that connects Plivo calls to the realtime model
// (issue 16); nil when voice_agent.url is empty (keypad only). It is voiceAgent for Plivo's one
// flavor, with one difference: Plivo's stream names the call uuid, while the call's send is found by
// its request_uuid, which the stream URL carries (plivo.StreamRef).
func plivoAgent(c config.VoiceAgent, logger *slog.Logger) (func(channel.Host) http.Handler, error) {
	if !c.Enabled() {
		return nil, nil
	}
	ag, err := agent.New(agent.Config{URL: c.URL, APIKey: c.APIKey.Value(), Model: c.Model, Voice: c.Voice,
		FirstAudio: time.Duration(c.FirstAudio), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("voice_agent: %w", err)
	}
	return func(host channel.Host) http.Handler {
		return &media.Handler{Flavor: media.Plivo, Logger: logger, MaxCallLength: time.Duration(c.MaxCall), MaxCalls: c.MaxCalls,
			Authorize: func(ctx context.Context, token string) (media.Call, error) { return authorizeStream(ctx, host, token) },
			Run: func(ctx context.Context, call media.Call, s *media.Stream) error {
				// Without a request_uuid (a URL Ony did not write) the outcome is not kept; the
				// decision itself is, and the hangup callback still reports the call answered.
				return runAgentRef(ctx, host, ag, plivo.Name, plivo.StreamRef(ctx), call, s, logger)
			}}
	}, nil
}
