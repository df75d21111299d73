package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"strings"
)

// Signature is what Twilio (and SignalWire, keyed with its signing key) sends in X-Twilio-Signature
// for a POST to rawURL with form params: base64 of HMAC-SHA1(key, the URL followed by every param's
// name and value, sorted by name, then by value). A JSON body is signed as the URL alone, which then
// carries ?bodySHA256=<hex SHA-256 of the body>.
func Signature(key, rawURL string, params url.Values) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(rawURL))
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Valid reports, in constant time, whether sig signs a form POST of params to rawURL, or to rawURL
// with an explicit default port added or removed (proxies and SDKs disagree on which one is signed).
func Valid(key, sig, rawURL string, params url.Values) bool {
	if key == "" || sig == "" {
		return false
	}
	ok := false
	for _, u := range urlVariants(rawURL) {
		// Every variant is computed, so the time taken does not say which one matched.
		if subtle.ConstantTimeCompare([]byte(Signature(key, u, params)), []byte(sig)) == 1 {
			ok = true
		}
	}
	return ok
}

// ValidBody reports whether sig signs a POST of a non-form body (JSON) to rawURL: the URL's
// bodySHA256 must be the body's hash, and the signature covers the URL alone.
func ValidBody(key, sig, rawURL string, body []byte) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	want := u.Query().Get("bodySHA256")
	sum := sha256.Sum256(body)
	if want == "" || subtle.ConstantTimeCompare([]byte(strings.ToLower(want)), []byte(hex.EncodeToString(sum[:]))) != 1 {
		return false
	}
	return Valid(key, sig, rawURL, nil)
}

// urlVariants is rawURL as given, and with its scheme's default port made explicit or dropped.
func urlVariants(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return []string{rawURL}
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return []string{rawURL}
	}
	alt := *u
	switch u.Port() {
	case "":
		alt.Host = u.Host + ":" + def
	case def:
		alt.Host = u.Hostname()
		if strings.Contains(alt.Host, ":") { // IPv6 literal
			alt.Host = "[" + alt.Host + "]"
		}
	default:
		return []string{rawURL}
	}
	return []string{rawURL, alt.String()}
}
