package plivo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/ony-ai/ony/channel"
)

// maxBody bounds a webhook body; Plivo's are a few KiB of form parameters.
const maxBody = 64 << 10

// nonceTTL is how long a signature's nonce is remembered. V3 has no timestamp, so a captured request
// stays valid forever: the nonce, spent once, is what refuses a replay.
const nonceTTL = 7 * 24 * time.Hour

// signed reads the form Plivo posted to route path and checks signature V3 against the URL Ony
// published for it (PublicURL + path + the query as received). Only then is the body parsed for use.
// It answers the request itself and returns ok=false when the request is not Plivo's, or replayed.
func (p *Provider) signed(w http.ResponseWriter, r *http.Request, host channel.Host, path string) (url.Values, bool) {
	sig, nonce := r.Header.Get(sigHeader), r.Header.Get(nonceHeader)
	if sig == "" || nonce == "" || len(nonce) > 128 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(raw) > maxBody {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	var form url.Values
	if r.Method == http.MethodPost {
		// Parsing the form is part of computing the signature (it covers the sorted parameters);
		// nothing in it is used before the signature matches.
		if form, err = url.ParseQuery(string(raw)); err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return nil, false
		}
	}
	uri := p.public + "/hooks/" + Name + "/" + path
	if r.URL.RawQuery != "" {
		uri += "?" + r.URL.RawQuery
	}
	if !ValidV3(p.authToken, uri, r.Method, nonce, sig, firstValues(form)) {
		p.log.Info("plivo: webhook with a bad signature refused", "route", path)
		http.Error(w, "forbidden", http.StatusForbidden)
		return nil, false
	}
	if !p.fresh(r.Context(), host, "nonce:"+nonce+":"+sig) {
		p.log.Info("plivo: replayed webhook refused", "route", path)
		http.Error(w, "forbidden", http.StatusForbidden)
		return nil, false
	}
	return form, true
}

// fresh reports whether key (namespaced here) is seen for the first time. When dedupe is down the
// request is handled anyway: decision tokens are single-use, so a duplicate can only be refused.
func (p *Provider) fresh(ctx context.Context, host channel.Host, key string) bool {
	sum := sha256.Sum256([]byte(key))
	ok, err := host.Once(ctx, "plivo:"+hex.EncodeToString(sum[:16]), nonceTTL)
	if err != nil {
		p.log.Warn("plivo: dedupe unavailable, handling the webhook anyway")
		return true
	}
	return ok
}
