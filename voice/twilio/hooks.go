package twilio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
)

const (
	// maxBody is far above any webhook Twilio or SignalWire posts; the server's own limit is 1 MiB.
	maxBody = 64 << 10
	// onceTTL is how long a handled request is remembered. Twilio's signature has no timestamp, so
	// a replay is caught only by remembering what was handled: a day outlives any retry by Twilio,
	// and decision tokens and codes are single-use anyway, so an older replay can only be refused.
	onceTTL = 24 * time.Hour
)

// request is a webhook whose signature checked out.
type request struct {
	params url.Values
	query  url.Values
	// digest identifies the exact request (URL and params), for dedupe.
	digest string
}

type verifiedHandler func(w http.ResponseWriter, r *http.Request, host channel.Host, req request)

// verified reads the raw body and checks the signature against the URL Ony published for route
// (PublicURL + /hooks/{name}/route + the query it was called with), before next sees anything.
// A request that fails answers 403 and changes nothing.
func (p *Provider) verified(host channel.Host, route string, next verifiedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			http.Error(w, "could not read the request", http.StatusBadRequest)
			return
		}
		if len(body) > maxBody {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		sig := p.signature(r.Header)
		published := p.public + "/hooks/" + p.name + "/" + route
		if r.URL.RawQuery != "" {
			published += "?" + r.URL.RawQuery
		}
		query, qerr := url.ParseQuery(r.URL.RawQuery)
		var params url.Values
		var ok bool
		if qerr == nil && query.Has("bodySHA256") {
			// A JSON body: the signature covers the URL, the URL the body's hash. None of Ony's
			// routes takes JSON, so such a body is verified and then read as having no params.
			ok, params = ValidBody(p.key, sig, published, body), url.Values{}
		} else {
			// The form is decoded only to compute the signature; nothing acts on it until it checks out.
			params, err = url.ParseQuery(string(body))
			ok = err == nil && qerr == nil && Valid(p.key, sig, published, params)
		}
		if !ok {
			p.log.Info(p.name+": webhook with a bad or missing signature refused", "route", route)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next(w, r, host, request{params: params, query: query, digest: digest(published, params)})
	})
}

// signature is the request's signature header: SignalWire sends X-SignalWire-Signature and, for
// compatibility, X-Twilio-Signature.
func (p *Provider) signature(h http.Header) string {
	if p.flavor == SignalWire {
		if s := h.Get("X-SignalWire-Signature"); s != "" {
			return s
		}
	}
	return h.Get("X-Twilio-Signature")
}

// digest is a hash of the URL and the params, sorted, for dedupe keys.
func digest(u string, params url.Values) string {
	h := sha256.New()
	h.Write([]byte(u))
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range params[k] {
			h.Write([]byte{0})
			h.Write([]byte(k))
			h.Write([]byte{0})
			h.Write([]byte(v))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// fresh reports whether key was not handled before. When dedupe is down the request is handled
// anyway: tokens and codes are single-use, so a duplicate can only be refused, never counted twice.
func (p *Provider) fresh(ctx context.Context, host channel.Host, key string) bool {
	ok, err := host.Once(ctx, p.name+":"+key, onceTTL)
	if err != nil {
		p.log.Warn(p.name+": dedupe unavailable, handling the webhook anyway", "err", err)
		return true
	}
	if !ok {
		p.log.Debug(p.name + ": replayed webhook dropped")
	}
	return ok
}

// twiml writes a TwiML (LaML) document of the given verbs.
func twiml(w http.ResponseWriter, verbs ...string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response>`+strings.Join(verbs, "")+`</Response>`)
}

// esc escapes s for XML text and attribute values.
func esc(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}
