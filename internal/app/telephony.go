package app

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/voice/plivo"
	"github.com/ony-ai/ony/voice/telnyx"
	"github.com/ony-ai/ony/voice/twilio"
)

// smsProvider is a configured telephony provider: its SMS and call channels and its texter.
type smsProvider interface {
	org.Texter
	SMS() channel.Channel
	Call() channel.Channel
}

// telephony builds the SMS and call channels of every provider whose credentials are set (issue 15),
// in the order Twilio, SignalWire, Telnyx, Plivo (a step without providers: fails over in that
// order), and the texter phone verification uses: the first of them.
func telephony(c *config.Config, logger *slog.Logger, o Options, timeout time.Duration) ([]channel.Channel, org.Texter, error) {
	var ps []smsProvider
	client := o.providerClient(timeout)
	public := strings.TrimRight(c.PublicURL, "/")
	agents, err := newVoiceAgents(c.VoiceAgent, logger, o)
	if err != nil {
		return nil, nil, err
	}
	if t := c.Twilio; t.Enabled() {
		p, err := twilio.New(twilio.Config{Flavor: twilio.Twilio, AccountSID: t.AccountSID, AuthToken: t.AuthToken.Value(), From: t.From,
			APIURL: t.APIURL, PublicURL: public, Timeout: timeout, Logger: logger, Clock: o.Clock, HTTPClient: client, Media: agents.twilio()})
		if err != nil {
			return nil, nil, fmt.Errorf("twilio: %w", err)
		}
		ps = append(ps, p)
	}
	if s := c.SignalWire; s.Enabled() {
		p, err := twilio.New(twilio.Config{Flavor: twilio.SignalWire, AccountSID: s.ProjectID, AuthToken: s.APIToken.Value(),
			SigningKey: s.SigningKey.Value(), From: s.From, APIURL: strings.TrimRight(s.SpaceURL, "/") + "/api/laml",
			PublicURL: public, Timeout: timeout, Logger: logger, Clock: o.Clock, HTTPClient: client, Media: agents.twilio()})
		if err != nil {
			return nil, nil, fmt.Errorf("signalwire: %w", err)
		}
		ps = append(ps, p)
	}
	if t := c.Telnyx; t.Enabled() {
		p, err := telnyx.New(telnyx.Config{APIKey: t.APIKey.Value(), PublicKey: t.PublicKey, ConnectionID: t.ConnectionID, From: t.From,
			APIURL: t.APIURL, PublicURL: public, Timeout: timeout, Logger: logger, Clock: o.Clock, HTTPClient: client, Media: agents.telnyx()})
		if err != nil {
			return nil, nil, fmt.Errorf("telnyx: %w", err)
		}
		ps = append(ps, p)
	}
	if pl := c.Plivo; pl.Enabled() {
		p, err := plivo.New(plivo.Config{AuthID: pl.AuthID, AuthToken: pl.AuthToken.Value(), From: pl.From, APIURL: pl.APIURL,
			PublicURL: public, Timeout: timeout, Logger: logger, Clock: o.Clock, HTTPClient: client, Media: agents.plivo()})
		if err != nil {
			return nil, nil, fmt.Errorf("plivo: %w", err)
		}
		ps = append(ps, p)
	}
	var chs []channel.Channel
	for _, p := range ps {
		chs = append(chs, p.SMS(), p.Call())
	}
	if len(ps) == 0 {
		return nil, nil, nil
	}
	return chs, ps[0], nil
}
