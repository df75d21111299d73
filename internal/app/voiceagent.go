package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/voice"
	"github.com/ony-ai/ony/voice/agent"
	"github.com/ony-ai/ony/voice/media"
	"github.com/ony-ai/ony/voice/twilio"
)

// voiceAgent builds the media websocket handlers that connect calls to the realtime model (issue
// 16); nil when voice_agent.url is empty (keypad only).
func voiceAgent(c config.VoiceAgent, logger *slog.Logger) (func(channel.Host, twilio.Flavor) http.Handler, error) {
	if !c.Enabled() {
		return nil, nil
	}
	ag, err := agent.New(agent.Config{URL: c.URL, APIKey: c.APIKey.Value(), Model: c.Model, Voice: c.Voice,
		FirstAudio: time.Duration(c.FirstAudio), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("voice_agent: %w", err)
	}
	return func(host channel.Host, f twilio.Flavor) http.Handler {
		flavor, provider := media.Twilio, "twilio"
		if f == twilio.SignalWire {
			flavor, provider = media.SignalWire, "signalwire"
		}
		return &media.Handler{Flavor: flavor, Logger: logger, MaxCallLength: time.Duration(c.MaxCall), MaxCalls: c.MaxCalls,
			Authorize: func(ctx context.Context, token string) (media.Call, error) { return authorizeStream(ctx, host, token) },
			Run: func(ctx context.Context, call media.Call, s *media.Stream) error {
				return runAgent(ctx, host, ag, provider, call, s, logger)
			}}
	}, nil
}

// authorizeStream admits a media stream only for a live call's token, once: the token must still
// recall its handoff (pending, unspent), and a second stream with it is refused on every replica.
func authorizeStream(ctx context.Context, host channel.Host, token string) (media.Call, error) {
	n, err := host.Recall(ctx, token, voice.CallKind.Name)
	if err != nil {
		return media.Call{}, err
	}
	sum := sha256.Sum256([]byte(token))
	first, err := host.Once(ctx, "media:"+hex.EncodeToString(sum[:]), 24*time.Hour)
	if err != nil {
		return media.Call{}, err
	}
	if !first {
		return media.Call{}, problem.New(problem.Conflict, "stream_token_used", "this call's stream was opened already")
	}
	return media.Call{Token: token, From: n.Recipient.Address, Notification: n}, nil
}

// runAgent talks the call through with the model. When the model fails, the stream is closed at once
// and the provider resumes the call at the keypad; a decision's outcome is kept on the call's send.
func runAgent(ctx context.Context, host channel.Host, ag *agent.Agent, provider string, call media.Call, s *media.Stream, logger *slog.Logger) error {
	return runAgentRef(ctx, host, ag, provider, s.CallRef(), call, s, logger)
}

// runAgentRef is runAgent keeping the outcome on the send whose reference is ref (where the stream's
// call id is not the call's Delivery.Ref: Plivo).
func runAgentRef(ctx context.Context, host channel.Host, ag *agent.Agent, provider, ref string, call media.Call, s *media.Stream, logger *slog.Logger) error {
	outcome, err := ag.Run(ctx, host, agent.Call{Token: call.Token, From: call.From, Notification: call.Notification}, agentStream{s})
	if outcome != "" {
		if err := voice.Record(ctx, host, provider, ref, voice.Prompt{Outcome: outcome}); err != nil {
			logger.Warn("voice agent: recording how a call ended failed", "provider", provider, "err", err)
		}
	}
	if errors.Is(err, agent.ErrFallback) {
		logger.Info("voice agent: the model failed; the call goes on at the keypad", "provider", provider)
		return nil
	}
	return err
}

// agentStream is a media stream as the agent reads it.
type agentStream struct{ s *media.Stream }

func (a agentStream) Recv(ctx context.Context) (agent.Event, error) {
	e, err := a.s.Recv(ctx)
	if err != nil {
		return agent.Event{}, err
	}
	out := agent.Event{Payload: e.Payload, Digit: e.Digit, Name: e.Name}
	switch e.Kind {
	case media.Media:
		out.Kind = agent.EventMedia
	case media.DTMF:
		out.Kind = agent.EventDTMF
	case media.Mark:
		out.Kind = agent.EventMark
	case media.Stop:
		out.Kind = agent.EventStop
	default:
		out.Kind = agent.EventOther
	}
	return out, nil
}

func (a agentStream) Send(ulaw []byte)      { a.s.Send(ulaw) }
func (a agentStream) Mark(name string)      { a.s.Mark(name) }
func (a agentStream) Clear()                { a.s.Clear() }
func (a agentStream) Played() time.Duration { return a.s.Played() }
