package plivotest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ony-ai/ony/internal/testhttp"
)

// Driver plays Plivo's side of Ony's webhooks: it posts forms signed with signature V3 as Plivo does.
// The signer here is written apart from the one in package plivo, so the two check each other (and
// both are checked against plivo-go's vectors).
type Driver struct {
	t         testing.TB
	authToken string

	mu   sync.Mutex
	last *sent // the last request, for Replay

	public, target string // see Via
}

type sent struct {
	url, nonce, sig string
	form            url.Values
}

// NewDriver signs with the account's auth token.
func NewDriver(t testing.TB, authToken string) *Driver {
	return &Driver{t: t, authToken: authToken}
}

// Via sends requests for URLs under public (Ony's configured PublicURL) to target instead (where the
// test's server listens), signed still for the public URL, as Plivo reaches Ony through a proxy.
func (d *Driver) Via(public, target string) *Driver {
	d.public, d.target = strings.TrimRight(public, "/"), strings.TrimRight(target, "/")
	return d
}

// Option changes how one request is signed.
type Option func(*opts)

type opts struct {
	key, nonce, signURL, header string
	noSig, noNonce, extra       bool
}

// WrongKey signs with another auth token.
func WrongKey(key string) Option { return func(o *opts) { o.key = key } }

// NoSignature sends no X-Plivo-Signature-V3 header.
func NoSignature() Option { return func(o *opts) { o.noSig = true } }

// NoNonce sends no nonce header (the signature is still computed with one).
func NoNonce() Option { return func(o *opts) { o.noNonce = true } }

// Nonce fixes the nonce (default: a fresh random one per request).
func Nonce(n string) Option { return func(o *opts) { o.nonce = n } }

// SignedFor signs as if the request went to another URL (a stale state, another token, a tampered
// query), then sends it to the real one.
func SignedFor(u string) Option { return func(o *opts) { o.signURL = u } }

// Header sends this signature header verbatim.
func Header(v string) Option { return func(o *opts) { o.header = v } }

// AlsoOtherSignature lists a signature by another key before the right one, as Plivo does while an
// auth token rotates.
func AlsoOtherSignature() Option { return func(o *opts) { o.extra = true } }

// Sign is signature V3 of a POST of form to u, as Plivo computes it.
func Sign(authToken, u, nonce string, form url.Values) string {
	pu, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	s := pu.Scheme + "://" + pu.Host + pu.Path
	params := map[string]string{}
	for k, v := range form {
		params[k] = v[0]
	}
	if len(params) > 0 || pu.RawQuery != "" {
		s += "?"
	}
	if pu.RawQuery != "" {
		q := map[string]string{}
		for k, v := range pu.Query() {
			q[k] = v[0]
		}
		var parts []string
		for _, k := range keys(q) {
			parts = append(parts, k+"="+q[k])
		}
		// As plivo-go: trailing "&" trimmed, and after the body part trailing dots (a quirk that
		// a genuine signature has, so it must be copied).
		s += strings.TrimRight(strings.Join(parts, "&"), "&") + "."
		for _, k := range keys(params) {
			s += k + params[k]
		}
		s = strings.TrimRight(s, ".")
	} else {
		for _, k := range keys(params) {
			s += k + params[k]
		}
	}
	s += "." + nonce
	mac := hmac.New(sha256.New, []byte(authToken))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Reply is what Ony answered.
type Reply struct {
	Status int
	Body   string
	// Doc is the Plivo XML document, when the reply is one.
	Doc *Document
}

// Post sends form to u signed as Plivo would, modified by options.
func (d *Driver) Post(u string, form url.Values, options ...Option) Reply {
	d.t.Helper()
	o := opts{key: d.authToken, signURL: u}
	for _, f := range options {
		f(&o)
	}
	if o.nonce == "" {
		o.nonce = nonce()
	}
	sig := Sign(o.key, o.signURL, o.nonce, form)
	if o.extra {
		sig = Sign("another-auth-token", o.signURL, o.nonce, form) + "," + sig
	}
	if o.header != "" {
		sig = o.header
	}
	if o.noSig {
		sig = ""
	}
	n := o.nonce
	if o.noNonce {
		n = ""
	}
	d.mu.Lock()
	d.last = &sent{url: u, nonce: n, sig: sig, form: form}
	d.mu.Unlock()
	return d.send(u, n, sig, form)
}

// Replay sends the last request again, byte for byte, as someone who captured it would.
func (d *Driver) Replay() Reply {
	d.t.Helper()
	d.mu.Lock()
	l := d.last
	d.mu.Unlock()
	if l == nil {
		d.t.Fatal("plivotest: nothing to replay")
	}
	return d.send(l.url, l.nonce, l.sig, l.form)
}

func (d *Driver) send(u, nonce, sig string, form url.Values) Reply {
	d.t.Helper()
	to := u
	if rest, ok := strings.CutPrefix(u, d.public+"/"); ok && d.public != "" {
		to = d.target + "/" + rest
	}
	req, err := http.NewRequest(http.MethodPost, to, strings.NewReader(form.Encode()))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "PlivoHttpClient")
	if sig != "" {
		req.Header.Set("X-Plivo-Signature-V3", sig)
	}
	if nonce != "" {
		req.Header.Set("X-Plivo-Signature-V3-Nonce", nonce)
	}
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	r := Reply{Status: resp.StatusCode, Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
		doc, err := ParseDocument(b)
		if err != nil {
			d.t.Fatalf("plivotest: Ony answered XML Plivo would refuse: %v\n%s", err, b)
		}
		r.Doc = doc
	}
	return r
}

func nonce() string {
	// Plivo's nonces are 20 decimal digits.
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	return string(b[:])
}

// InboundSMS posts a text from → to (E.164) with body text to Ony's message URL, as Plivo does;
// it returns the reply and the MessageUUID it used.
func (d *Driver) InboundSMS(hookURL, from, to, text string, options ...Option) (Reply, string) {
	d.t.Helper()
	id := UUID()
	form := url.Values{"From": {strings.TrimPrefix(from, "+")}, "To": {strings.TrimPrefix(to, "+")}, "Text": {text},
		"Type": {"sms"}, "MessageUUID": {id}, "Units": {"1"}, "TotalAmount": {"0.00000"}, "TotalRate": {"0.00000"},
		"PowerpackUUID": {""}, "MessageIntent": {""}}
	return d.Post(hookURL, form, options...), id
}

// SMSStatus posts a delivery report for m to the url it was sent with.
func (d *Driver) SMSStatus(m SMS, status string, options ...Option) Reply {
	d.t.Helper()
	if m.URL == "" {
		d.t.Fatal("plivotest: the message was sent without a report url")
	}
	form := url.Values{"MessageUUID": {m.UUID}, "Status": {status}, "From": {m.Src}, "To": {m.Dst},
		"ParentMessageUUID": {m.UUID}, "PartInfo": {"1 of 1"}, "TotalAmount": {"0.00650"}, "TotalRate": {"0.00650"}, "Units": {"1"},
		"ErrorCode": {""}, "MessageTime": {"2026-12-06 05:00:00+00:00"}}
	if status == "failed" || status == "undelivered" {
		form.Set("ErrorCode", "200")
	}
	return d.Post(m.URL, form, options...)
}

// callForm is what Plivo posts about call c in every request.
func callForm(c Call, status string) url.Values {
	return url.Values{"CallUUID": {c.CallUUID}, "RequestUUID": {c.RequestUUID}, "ALegUUID": {c.CallUUID},
		"ALegRequestUUID": {c.RequestUUID}, "From": {c.From}, "To": {c.To}, "Direction": {"outbound"},
		"CallStatus": {status}, "BillRate": {"0.00850"}, "ParentAuthID": {"MAXXXXXXXXXXXXXXXXXX"},
		"SessionStart": {"2026-12-06 05:00:00.000000"}}
}

// Answer fetches the call's answer document, as Plivo does once the callee picked up.
func (d *Driver) Answer(c Call, options ...Option) Reply {
	d.t.Helper()
	f := callForm(c, "in-progress")
	f.Set("Event", "StartApp")
	return d.Post(c.AnswerURL, f, options...)
}

// Press posts digits to the GetDigits action of doc.
func (d *Driver) Press(c Call, doc *Document, digits string, options ...Option) Reply {
	d.t.Helper()
	if doc == nil || doc.Gather == nil {
		d.t.Fatalf("plivotest: the document collects no digits: %+v", doc)
	}
	f := callForm(c, "in-progress")
	f.Set("Digits", digits)
	f.Set("Event", "Redirect")
	return d.Post(doc.Gather.Action, f, options...)
}

// Silence follows the Redirect after GetDigits, as Plivo does when nothing was pressed (or after a
// Stream, as Plivo does once the stream's socket closed).
func (d *Driver) Silence(c Call, doc *Document, options ...Option) Reply {
	d.t.Helper()
	if doc == nil || doc.Redirect == "" {
		d.t.Fatalf("plivotest: the document has no Redirect to follow: %+v", doc)
	}
	f := callForm(c, "in-progress")
	f.Set("Event", "Redirect")
	return d.Post(doc.Redirect, f, options...)
}

// Machine posts the machine detection result to the call's machine_detection_url.
func (d *Driver) Machine(c Call, machine bool, options ...Option) Reply {
	d.t.Helper()
	f := callForm(c, "in-progress")
	f.Set("Machine", map[bool]string{true: "true", false: "false"}[machine])
	return d.Post(c.MachineDetectionURL, f, options...)
}

// Hangup posts how the call ended to its hangup_url: status (completed, busy, no-answer, failed,
// timeout, cancel), Plivo's cause (NORMAL_CLEARING, USER_BUSY, NO_ANSWER...), and whether it was
// answered (Plivo then sends AnswerTime and a duration).
func (d *Driver) Hangup(c Call, status, cause string, answered bool, options ...Option) Reply {
	d.t.Helper()
	f := callForm(c, status)
	f.Set("Event", "Hangup")
	f.Set("HangupCause", cause)
	f.Set("HangupSource", "Callee")
	f.Set("StartTime", "2026-12-06 05:00:00")
	f.Set("EndTime", "2026-12-06 05:01:00")
	f.Set("AnswerTime", "")
	f.Set("Duration", "0")
	f.Set("BillDuration", "0")
	if answered {
		f.Set("AnswerTime", "2026-12-06 05:00:10")
		f.Set("Duration", "50")
		f.Set("BillDuration", "60")
	}
	return d.Post(c.HangupURL, f, options...)
}

// Document is a Plivo XML document Ony answered with, checked the way Plivo reads it.
type Document struct {
	// Says is every text spoken, in order (inside GetDigits too).
	Says []string
	// Gather is the GetDigits, if any.
	Gather *GetDigits
	// Redirect is the URL of a Redirect, if any.
	Redirect string
	Hangup   bool
	// Wait is the length of a Wait before anything is said, in seconds (0: none).
	Wait int
	// Stream is the media Stream the call is connected to, if any.
	Stream *Stream
	// Message is a reply text (message URL answers).
	Message *Message
}

// GetDigits is the attributes of a GetDigits verb.
type GetDigits struct {
	Action      string `xml:"action,attr"`
	Method      string `xml:"method,attr"`
	NumDigits   int    `xml:"numDigits,attr"`
	Timeout     int    `xml:"timeout,attr"`
	Retries     int    `xml:"retries,attr"`
	ValidDigits string `xml:"validDigits,attr"`
	Log         string `xml:"log,attr"`
	Redirect    string `xml:"redirect,attr"`
	Speak       []struct {
		Text string `xml:",chardata"`
	} `xml:"Speak"`
}

// Stream is a Stream verb as Ony uses it: a bidirectional µ-law stream that keeps the call until the
// socket closes. Params are its extra headers ("k=v,k2=v2"), as the stream's start carries them.
type Stream struct {
	URL           string
	Bidirectional bool
	KeepCallAlive bool
	ContentType   string
	Params        map[string]string
}

// Message is a Message verb: a text to send.
type Message struct {
	Src  string `xml:"src,attr"`
	Dst  string `xml:"dst,attr"`
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

// ParseDocument reads a Plivo XML document strictly: a Response of known verbs, nothing after a
// Hangup, GetDigits with an absolute action and 1 to 20 digits.
func ParseDocument(b []byte) (*Document, error) {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	var doc Document
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			if _, end := tok.(xml.EndElement); end {
				depth--
			}
			continue
		}
		if depth == 0 {
			if se.Name.Local != "Response" {
				return nil, errf("root is %s, not Response", se.Name.Local)
			}
			depth++
			continue
		}
		if doc.Hangup {
			return nil, errf("%s after Hangup", se.Name.Local)
		}
		switch se.Name.Local {
		case "Speak":
			var s struct {
				Text string `xml:",chardata"`
			}
			if err := dec.DecodeElement(&s, &se); err != nil {
				return nil, err
			}
			if strings.TrimSpace(s.Text) == "" {
				return nil, errf("empty Speak")
			}
			doc.Says = append(doc.Says, s.Text)
		case "GetDigits":
			var g GetDigits
			if err := dec.DecodeElement(&g, &se); err != nil {
				return nil, err
			}
			if doc.Gather != nil {
				return nil, errf("two GetDigits")
			}
			if !absURL(g.Action) || g.NumDigits < 1 || g.NumDigits > 20 || (g.Method != "POST" && g.Method != "GET") {
				return nil, errf("GetDigits needs an absolute action, a method and 1 to 20 digits")
			}
			for _, s := range g.Speak {
				doc.Says = append(doc.Says, s.Text)
			}
			doc.Gather = &g
		case "Redirect":
			var r struct {
				URL string `xml:",chardata"`
			}
			if err := dec.DecodeElement(&r, &se); err != nil {
				return nil, err
			}
			if !absURL(strings.TrimSpace(r.URL)) {
				return nil, errf("Redirect to a relative URL")
			}
			doc.Redirect = strings.TrimSpace(r.URL)
		case "Wait":
			var wt struct {
				Length     int    `xml:"length,attr"`
				Silence    string `xml:"silence,attr"`
				MinSilence int    `xml:"minSilence,attr"`
			}
			if err := dec.DecodeElement(&wt, &se); err != nil {
				return nil, err
			}
			if wt.Length < 1 || (wt.Silence != "" && wt.Silence != "true" && wt.Silence != "false") || wt.MinSilence < 0 {
				return nil, errf("Wait needs a length of 1 s or more")
			}
			if len(doc.Says) > 0 || doc.Gather != nil || doc.Stream != nil {
				return nil, errf("Ony waits only before it speaks")
			}
			doc.Wait = wt.Length
		case "Stream":
			st, err := parseStream(dec, se)
			if err != nil {
				return nil, err
			}
			if doc.Stream != nil || doc.Gather != nil || len(doc.Says) > 0 {
				return nil, errf("Stream must be the first thing the call does, once")
			}
			doc.Stream = st
		case "Hangup":
			if err := dec.Skip(); err != nil {
				return nil, err
			}
			doc.Hangup = true
		case "Message":
			var m Message
			if err := dec.DecodeElement(&m, &se); err != nil {
				return nil, err
			}
			if !numberRE.MatchString(m.Src) || !numberRE.MatchString(m.Dst) || strings.TrimSpace(m.Text) == "" {
				return nil, errf("Message needs src, dst and text")
			}
			doc.Message = &m
		default:
			return nil, errf("unknown verb %s", se.Name.Local)
		}
	}
	return &doc, nil
}

// parseStream reads a Stream strictly, as Plivo would accept it and as the voice agent needs it: a
// ws(s) URL, bidirectional, the call kept alive while it runs, µ-law at 8 kHz, extra headers as k=v
// pairs (letters, digits, - and _ in keys; no , or = in values).
func parseStream(dec *xml.Decoder, se xml.StartElement) (*Stream, error) {
	var raw struct {
		Bidirectional string `xml:"bidirectional,attr"`
		KeepCallAlive string `xml:"keepCallAlive,attr"`
		ContentType   string `xml:"contentType,attr"`
		ExtraHeaders  string `xml:"extraHeaders,attr"`
		AudioTrack    string `xml:"audioTrack,attr"`
		URL           string `xml:",chardata"`
	}
	if err := dec.DecodeElement(&raw, &se); err != nil {
		return nil, err
	}
	u, err := url.Parse(strings.TrimSpace(raw.URL))
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return nil, errf("Stream needs a ws(s) URL")
	}
	st := &Stream{URL: u.String(), Bidirectional: raw.Bidirectional == "true", KeepCallAlive: raw.KeepCallAlive == "true",
		ContentType: raw.ContentType, Params: map[string]string{}}
	for _, a := range []string{raw.Bidirectional, raw.KeepCallAlive} {
		if a != "" && a != "true" && a != "false" {
			return nil, errf("Stream booleans are true or false")
		}
	}
	switch raw.ContentType {
	case "", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000", "audio/x-mulaw;rate=8000":
	default:
		return nil, errf("Stream contentType %q is not one Plivo streams", raw.ContentType)
	}
	if st.Bidirectional && raw.AudioTrack != "" && raw.AudioTrack != "inbound" {
		return nil, errf("a bidirectional Stream carries the inbound track only")
	}
	if raw.ExtraHeaders != "" {
		for _, kv := range strings.Split(raw.ExtraHeaders, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !headerKeyRE.MatchString(k) || v == "" || strings.Contains(v, "=") {
				return nil, errf("Stream extraHeaders are k=v pairs separated by commas")
			}
			st.Params[k] = v
		}
	}
	return st, nil
}

var headerKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func errf(format string, a ...any) error { return fmt.Errorf("plivotest: "+format, a...) }
