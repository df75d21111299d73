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
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/twilio"
)

// voiceAgents connect calls to the realtime model (issue 16): one agent, and a media websocket
// handler per provider. Nil when voice_agent.url is empty: calls use the keypad alone.
type voiceAgents struct {
	ag  *agent.Agent
	cfg config.VoiceAgent
	log *slog.Logger
}

func newVoiceAgents(c config.VoiceAgent, logger *slog.Logger, o Options) (*voiceAgents, error) {
	if !c.Enabled() {
		return nil, nil
	}
	ag, err := agent.New(agent.Config{URL: c.URL, APIKey: c.APIKey.Value(), Model: c.Model, Voice: c.Voice,
		FirstAudio: time.Duration(c.FirstAudio), Logger: logger, Dialer: o.wsDialer()})
	if err != nil {
		return nil, fmt.Errorf("voice_agent: %w", err)
	}
	return &voiceAgents{ag: ag, cfg: c, log: logger}, nil
}

// handler is provider's media websocket in its stream format. ref names the send a call's outcome is
// kept on; nil means the stream's own call id (Plivo's stream names another id than its send's).
func (v *voiceAgents) handler(host channel.Host, flavor media.Flavor, provider string, ref func(context.Context, *media.Stream) string) http.Handler {
	return &media.Handler{Flavor: flavor, Logger: v.log, MaxCallLength: time.Duration(v.cfg.MaxCall), MaxCalls: v.cfg.MaxCalls,
		Authorize: func(ctx context.Context, token string) (media.Call, error) { return authorizeStream(ctx, host, token) },
		Run: func(ctx context.Context, call media.Call, s *media.Stream) error {
			r := s.CallRef()
			if ref != nil {
				r = ref(ctx, s)
			}
			return v.run(ctx, host, provider, r, call, s)
		}}
}

// twilio, telnyx and plivo are the providers' Config.Media; nil when the agent is off.
func (v *voiceAgents) twilio() func(channel.Host, twilio.Flavor) http.Handler {
	if v == nil {
		return nil
	}
	return func(host channel.Host, f twilio.Flavor) http.Handler {
		if f == twilio.SignalWire {
			return v.handler(host, media.SignalWire, "signalwire", nil)
		}
		return v.handler(host, media.Twilio, "twilio", nil)
	}
}

func (v *voiceAgents) telnyx() func(channel.Host) http.Handler {
	if v == nil {
		return nil
	}
	return func(host channel.Host) http.Handler { return v.handler(host, media.Telnyx, telnyx.Name, nil) }
}

func (v *voiceAgents) plivo() func(channel.Host) http.Handler {
	if v == nil {
		return nil
	}
	// Without a request_uuid (a URL Ony did not write) the outcome is not kept; the decision itself
	// is, and the hangup callback still reports the call answered.
	return func(host channel.Host) http.Handler {
		return v.handler(host, media.Plivo, plivo.Name, func(ctx context.Context, _ *media.Stream) string { return plivo.StreamRef(ctx) })
	}
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

// run talks the call through with the model. When the model fails, the stream is closed at once and
// the provider resumes the call at the keypad; a decision's outcome is kept on the send named ref.
func (v *voiceAgents) run(ctx context.Context, host channel.Host, provider, ref string, call media.Call, s *media.Stream) error {
	outcome, err := v.ag.Run(ctx, host, agent.Call{Token: call.Token, From: call.From, Notification: call.Notification,
		Reasons: call.Notification.Reasons}, agentStream{s})
	if outcome != "" {
		if err := voice.Record(ctx, host, provider, ref, voice.Prompt{Outcome: outcome}); err != nil {
			v.log.Warn("voice agent: recording how a call ended failed", "provider", provider, "err", err)
		}
	}
	if errors.Is(err, agent.ErrFallback) {
		v.log.Info("voice agent: the model failed; the call goes on at the keypad", "provider", provider)
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
