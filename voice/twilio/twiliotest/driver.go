package twiliotest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ony-ai/ony/internal/testhttp"
)

// Driver plays the provider's side of Ony's webhooks: it posts the form the provider would post to
// a URL Ony published, signed as the provider signs it (its own implementation of the algorithm,
// so that a mistake in Ony's shows), to where the test serves Ony's routes.
type Driver struct {
	// Key signs: Twilio's auth token, or SignalWire's signing key.
	Key string
	// Header carries the signature: "X-Twilio-Signature" (default) or "X-SignalWire-Signature".
	Header string
	// Public is Ony's configured PublicURL; URLs under it are posted to Target instead.
	Public, Target string
	// AccountSID goes into every post.
	AccountSID string

	mu  sync.Mutex
	seq int
}

// Option changes how one post is signed.
type Option func(*post)

type post struct {
	key, signedURL string
	noSig          bool
	tamper         url.Values
}

// SignWith signs with another key: a wrong secret, or a token rotated since (a stale signature).
func SignWith(key string) Option { return func(p *post) { p.key = key } }

// NoSignature sends no signature header.
func NoSignature() Option { return func(p *post) { p.noSig = true } }

// SignedFor signs as if posting to another URL (a signature lifted from another request).
func SignedFor(u string) Option { return func(p *post) { p.signedURL = u } }

// Tamper changes params after signing, as a man in the middle would.
func Tamper(k, v string) Option {
	return func(p *post) {
		if p.tamper == nil {
			p.tamper = url.Values{}
		}
		p.tamper.Set(k, v)
	}
}

// Sign is the provider's signature of a form POST of params to rawURL.
func Sign(key, rawURL string, params url.Values) string {
	var b strings.Builder
	b.WriteString(rawURL)
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := slices.Clone(params[k])
		slices.Sort(vs)
		for _, v := range vs {
			b.WriteString(k + v)
		}
	}
	m := hmac.New(sha1.New, []byte(key))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Result is Ony's answer to one post.
type Result struct {
	Status int
	Body   string
	TwiML  TwiML
}

// TwiML is a document Ony answered with, as the provider reads it.
type TwiML struct {
	Says     []string // outside any Gather
	Messages []string
	Gather   *Gather
	Hangup   bool
	// Redirect is a <Redirect>'s URL: where the call goes when nothing before it moved it on.
	Redirect string
	// Verbs is the top-level verbs in order ("Gather", "Say", "Hangup", "Message", "Connect").
	Verbs []string
	// Stream is a <Connect><Stream>: the media websocket the call is connected to.
	Stream *Stream
}

// Stream is <Connect><Stream url>, with its <Parameter>s.
type Stream struct {
	URL    string
	Params map[string]string
}

// Gather is a <Gather>.
type Gather struct {
	NumDigits           int
	Action, Method      string
	Input               string
	ActionOnEmptyResult bool
	Says                []string
}

// Post signs params for publicURL and posts them.
func (d *Driver) Post(t testing.TB, publicURL string, params url.Values, opts ...Option) Result {
	t.Helper()
	p := post{key: d.Key, signedURL: publicURL}
	for _, o := range opts {
		o(&p)
	}
	sig := Sign(p.key, p.signedURL, params)
	body := cloneValues(params)
	for k, v := range p.tamper {
		body[k] = v
	}
	target, ok := strings.CutPrefix(publicURL, d.Public)
	if !ok {
		t.Fatalf("twiliotest: %s is not under the public URL", publicURL)
	}
	req, err := http.NewRequest(http.MethodPost, d.Target+target, strings.NewReader(body.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	if !p.noSig {
		h := d.Header
		if h == "" {
			h = "X-Twilio-Signature"
		}
		req.Header.Set(h, sig)
	}
	resp, err := testhttp.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := Result{Status: resp.StatusCode, Body: string(raw)}
	if resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
		tw, err := ParseTwiML(raw)
		if err != nil {
			t.Fatalf("twiliotest: Ony answered TwiML the provider cannot read: %v", err)
		}
		res.TwiML = tw
	}
	return res
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func (d *Driver) next(prefix string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	return fmt.Sprintf("%s%032x", prefix, 1<<40+d.seq)
}

// InboundSMS posts a text from → to with body to publicURL (Ony's /hooks/{name}/sms) and returns
// Ony's answer and the params posted (to replay them).
func (d *Driver) InboundSMS(t testing.TB, publicURL, from, to, body string, opts ...Option) (Result, url.Values) {
	t.Helper()
	p := url.Values{"MessageSid": {d.next("SM")}, "SmsSid": {""}, "AccountSid": {d.AccountSID}, "From": {from}, "To": {to},
		"Body": {body}, "NumMedia": {"0"}, "NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}}
	p.Set("SmsSid", p.Get("MessageSid"))
	return d.Post(t, publicURL, p, opts...), p
}

// SMSStatus posts m's status callback with status (sent, delivered, undelivered, failed).
func (d *Driver) SMSStatus(t testing.TB, m Message, status string, opts ...Option) Result {
	t.Helper()
	p := url.Values{"MessageSid": {m.SID}, "SmsSid": {m.SID}, "AccountSid": {d.AccountSID}, "From": {m.From}, "To": {m.To},
		"MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"}}
	return d.Post(t, m.StatusCallback, p, opts...)
}

func (d *Driver) callParams(c Call, status string) url.Values {
	return url.Values{"CallSid": {c.SID}, "AccountSid": {d.AccountSID}, "From": {c.From}, "To": {c.To}, "Called": {c.To},
		"Caller": {c.From}, "CallStatus": {status}, "Direction": {"outbound-api"}, "ApiVersion": {"2010-04-01"}}
}

// Answer fetches c's call document, as the provider does once the call is picked up; answeredBy is
// machine detection's verdict (human, machine_start, fax, unknown).
func (d *Driver) Answer(t testing.TB, c Call, answeredBy string, opts ...Option) Result {
	t.Helper()
	p := d.callParams(c, "in-progress")
	if answeredBy != "" {
		p.Set("AnsweredBy", answeredBy)
	}
	return d.Post(t, c.URL, p, opts...)
}

// Press posts digits to g's action, as the provider does when the callee pressed them ("" for a
// gather that timed out, which Ony asks to be posted with actionOnEmptyResult).
func (d *Driver) Press(t testing.TB, c Call, g *Gather, digits string, opts ...Option) Result {
	t.Helper()
	if g == nil {
		t.Fatal("twiliotest: no <Gather> to press digits into")
	}
	if digits == "" && !g.ActionOnEmptyResult {
		t.Fatal("twiliotest: a timed-out gather would not post to its action")
	}
	p := d.callParams(c, "in-progress")
	p.Set("Digits", digits)
	p.Set("FinishedOnKey", "")
	return d.Post(t, g.Action, p, opts...)
}

// CallStatus posts c's status callback (in-progress, completed, busy, no-answer, failed, canceled).
func (d *Driver) CallStatus(t testing.TB, c Call, status, answeredBy string, opts ...Option) Result {
	t.Helper()
	p := d.callParams(c, status)
	if answeredBy != "" {
		p.Set("AnsweredBy", answeredBy)
	}
	if status == "completed" {
		p.Set("CallDuration", "17")
	}
	return d.Post(t, c.StatusCallback, p, opts...)
}

type node struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// ParseTwiML reads a TwiML document strictly: a <Response> of the verbs Ony uses, a <Gather> with
// a numeric numDigits and an absolute action, nothing after a <Hangup/>.
func ParseTwiML(raw []byte) (TwiML, error) {
	var root node
	if err := xml.Unmarshal(raw, &root); err != nil {
		return TwiML{}, err
	}
	if root.XMLName.Local != "Response" {
		return TwiML{}, fmt.Errorf("root <%s>, want <Response>", root.XMLName.Local)
	}
	var tw TwiML
	for _, n := range root.Nodes {
		if tw.Hangup || tw.Redirect != "" {
			return TwiML{}, fmt.Errorf("<%s> after <Hangup/> or <Redirect>", n.XMLName.Local)
		}
		tw.Verbs = append(tw.Verbs, n.XMLName.Local)
		switch n.XMLName.Local {
		case "Say":
			tw.Says = append(tw.Says, n.Text)
		case "Message":
			tw.Messages = append(tw.Messages, n.Text)
		case "Hangup":
			tw.Hangup = true
		case "Redirect":
			if u, err := url.Parse(n.Text); err != nil || !u.IsAbs() || tw.Redirect != "" {
				return TwiML{}, fmt.Errorf("<Redirect>%s</Redirect>", n.Text)
			}
			tw.Redirect = n.Text
		case "Gather":
			if tw.Gather != nil {
				return TwiML{}, fmt.Errorf("two <Gather>s")
			}
			g := &Gather{Action: n.attr("action"), Method: n.attr("method"), Input: n.attr("input"), ActionOnEmptyResult: n.attr("actionOnEmptyResult") == "true"}
			nd, err := strconv.Atoi(n.attr("numDigits"))
			if err != nil || nd < 1 {
				return TwiML{}, fmt.Errorf("<Gather numDigits=%q>", n.attr("numDigits"))
			}
			g.NumDigits = nd
			if u, err := url.Parse(g.Action); err != nil || !u.IsAbs() {
				return TwiML{}, fmt.Errorf("<Gather action=%q> is not absolute", g.Action)
			}
			for _, c := range n.Nodes {
				if c.XMLName.Local != "Say" {
					return TwiML{}, fmt.Errorf("<%s> in <Gather>", c.XMLName.Local)
				}
				g.Says = append(g.Says, c.Text)
			}
			tw.Gather = g
		case "Connect":
			if len(n.Nodes) != 1 || n.Nodes[0].XMLName.Local != "Stream" || tw.Stream != nil {
				return TwiML{}, fmt.Errorf("<Connect> must hold one <Stream>")
			}
			st := n.Nodes[0]
			u, err := url.Parse(st.attr("url"))
			if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.RawQuery != "" {
				return TwiML{}, fmt.Errorf("<Stream url=%q>: a ws(s) URL without a query string", st.attr("url"))
			}
			tw.Stream = &Stream{URL: st.attr("url"), Params: map[string]string{}}
			for _, pn := range st.Nodes {
				if pn.XMLName.Local != "Parameter" {
					return TwiML{}, fmt.Errorf("<%s> in <Stream>", pn.XMLName.Local)
				}
				tw.Stream.Params[pn.attr("name")] = pn.attr("value")
			}
		default:
			return TwiML{}, fmt.Errorf("unknown verb <%s>", n.XMLName.Local)
		}
	}
	return tw, nil
}

// Follow posts to a document's <Redirect>, as the provider does when a gather that cannot post an
// empty result timed out: the call's params, no Digits.
func (d *Driver) Follow(t testing.TB, c Call, tw TwiML, opts ...Option) Result {
	t.Helper()
	if tw.Redirect == "" {
		t.Fatal("twiliotest: no <Redirect> to follow")
	}
	return d.Post(t, tw.Redirect, d.callParams(c, "in-progress"), opts...)
}
