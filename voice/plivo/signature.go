package plivo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"sort"
	"strings"
)

// Plivo signs every request it makes to Ony with signature V3: base64 HMAC-SHA256, keyed by the auth
// token, of a string built from the URL Plivo called, the POST parameters and a per-request nonce.
const (
	sigHeader   = "X-Plivo-Signature-V3"
	nonceHeader = "X-Plivo-Signature-V3-Nonce"
)

// SignatureV3 is the signature Plivo puts in X-Plivo-Signature-V3 for a request to uri with method
// and form params, carrying nonce. It follows plivo-go's ComputeSignatureV3 byte for byte, quirks
// included (only the first value of a repeated key counts; query values are decoded; for POST the
// sorted query, "." and the sorted params as key+value, with trailing dots trimmed), because any
// difference would make a genuine request fail.
func SignatureV3(authToken, uri, method, nonce string, params map[string]string) string {
	mac := hmac.New(sha256.New, []byte(authToken))
	mac.Write([]byte(v3Base(uri, method, params) + "." + nonce))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidV3 reports whether header (one signature, or several comma-separated as Plivo sends them
// during auth token rotation) holds the signature of the request, comparing in constant time.
func ValidV3(authToken, uri, method, nonce, header string, params map[string]string) bool {
	if header == "" || nonce == "" {
		return false
	}
	want := []byte(SignatureV3(authToken, uri, method, nonce, params))
	ok := false
	for _, s := range strings.Split(header, ",") {
		// No early return: every listed signature is compared, so timing says nothing about which.
		if hmac.Equal([]byte(strings.TrimSpace(s)), want) {
			ok = true
		}
	}
	return ok
}

// v3Base is plivo-go's GenerateUrl.
func v3Base(uri, method string, params map[string]string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "" // nothing Plivo could have signed; the signature cannot match a real one
	}
	base := u.Scheme + "://" + u.Host + u.Path
	if len(params) > 0 || u.RawQuery != "" {
		base += "?"
	}
	if u.RawQuery != "" {
		query := firstValues(u.Query())
		if method == "GET" {
			for k, v := range params {
				query[k] = v
			}
			return base + sorted(query, true)
		}
		return strings.TrimRight(base+sorted(query, true)+"."+sorted(params, false), ".")
	}
	return base + sorted(params, method == "GET")
}

func firstValues(q url.Values) map[string]string {
	m := make(map[string]string, len(q))
	for k, v := range q {
		m[k] = v[0]
	}
	return m
}

// sorted joins params by key: "k=v&k=v" for a query, "kvkv" for a body.
func sorted(params map[string]string, query bool) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if query {
			b.WriteString(k + "=" + params[k] + "&")
		} else {
			b.WriteString(k + params[k])
		}
	}
	if query {
		return strings.TrimRight(b.String(), "&") // as plivo-go does, trailing "&" of a value too
	}
	return b.String()
}
