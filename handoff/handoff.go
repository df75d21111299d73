// Package handoff is Ony's domain: agents' requests for a human decision, created, decided, cancelled
// and expired through one Service, each change in one transaction with the durable work it implies.
package handoff

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/internal/lazyregexp"
	"github.com/ony-ai/ony/internal/netguard"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// Limits on what an agent may send. They keep rows small and channels readable.
const (
	MaxTitleRunes   = 200
	MaxSummaryRunes = 4000
	MaxOptions      = 10
	MaxLabels       = 32
	MaxLabelValue   = 256
	MaxCallbackURL  = 2048
	MinTimeout      = 10 * time.Second
	MaxIdemKeyLen   = 255
)

var (
	actionRE   = lazyregexp.New(`^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
	optionIDRE = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	labelKeyRE = lazyregexp.New(`^[a-z0-9][a-z0-9_./-]{0,62}$`)
)

// PayloadKinds are the kinds of attachment an agent may send.
var PayloadKinds = []string{"command", "diff", "log", "text"}

// Payload is what the agent attaches: shown only in the authenticated console, sealed at rest.
type Payload struct {
	Kind    string
	Content string
}

// CreateRequest is a validated-on-Create request for a decision.
type CreateRequest struct {
	Action      string
	Title       string
	Summary     string
	Options     []store.Option
	Payload     *Payload
	Labels      map[string]string
	CallbackURL string
	Timeout     time.Duration // 0 = the configured default
}

// DefaultOptions are approve and deny.
func DefaultOptions() []store.Option {
	return []store.Option{{ID: "approve", Label: "Approve", Approves: true}, {ID: "deny", Label: "Deny", Approves: false}}
}

func invalid(code, format string, args ...any) error {
	return problem.New(problem.Invalid, code, format, args...)
}

// normalize validates r and fills defaults. It reports the first problem; codes are stable.
func (r *CreateRequest) normalize(maxPayload int) error {
	r.Action = strings.TrimSpace(r.Action)
	if len(r.Action) == 0 || len(r.Action) > 100 || !actionRE.MatchString(r.Action) {
		return invalid("invalid_action", "action must be dotted lowercase words, e.g. shell.exec or db.migrate (at most 100 characters)")
	}
	if !utf8.ValidString(r.Title) {
		return invalid("invalid_title", "title must be valid UTF-8")
	}
	r.Title = strings.TrimSpace(stripBidi(r.Title))
	if r.Title == "" {
		return invalid("invalid_title", "title is required")
	}
	if n := utf8.RuneCountInString(r.Title); n > MaxTitleRunes {
		return invalid("invalid_title", "title is %d characters; the limit is %d", n, MaxTitleRunes)
	}
	if hasControl(r.Title, false) {
		return invalid("invalid_title", "title must be one line without control characters")
	}
	if !utf8.ValidString(r.Summary) {
		return invalid("invalid_summary", "summary must be valid UTF-8")
	}
	r.Summary = stripBidi(r.Summary)
	if n := utf8.RuneCountInString(r.Summary); n > MaxSummaryRunes {
		return invalid("invalid_summary", "summary is %d characters; the limit is %d", n, MaxSummaryRunes)
	}
	if hasControl(r.Summary, true) {
		return invalid("invalid_summary", "summary must not contain control characters")
	}
	if err := normalizeOptions(&r.Options); err != nil {
		return err
	}
	if p := r.Payload; p != nil {
		if !contains(PayloadKinds, p.Kind) {
			return invalid("invalid_payload", "payload.kind must be one of %s", strings.Join(PayloadKinds, ", "))
		}
		if len(p.Content) > maxPayload {
			return problem.New(problem.TooLarge, "payload_too_large", "payload is %d bytes; the limit is %d", len(p.Content), maxPayload)
		}
		if p.Content == "" {
			r.Payload = nil
		}
	}
	if len(r.Labels) > MaxLabels {
		return invalid("invalid_labels", "at most %d labels", MaxLabels)
	}
	labels := make(map[string]string, len(r.Labels)) // the caller's map stays as it was
	for k, v := range r.Labels {
		if !labelKeyRE.MatchString(k) {
			return invalid("invalid_labels", "label keys are lowercase letters, digits and _ . / - (at most 63 characters)")
		}
		if !utf8.ValidString(v) {
			return invalid("invalid_labels", "label %q: values must be valid UTF-8", k)
		}
		v = stripBidi(v)
		if len(v) > MaxLabelValue || hasControl(v, false) {
			return invalid("invalid_labels", "label %q: values are one line of at most %d bytes", k, MaxLabelValue)
		}
		labels[k] = v
	}
	if r.Labels != nil {
		r.Labels = labels
	}
	if r.CallbackURL != "" {
		u, err := url.Parse(r.CallbackURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(r.CallbackURL) > MaxCallbackURL {
			return invalid("invalid_callback_url", "callback_url must be an absolute http(s) URL of at most %d characters", MaxCallbackURL)
		}
		if u.User != nil {
			return invalid("invalid_callback_url", "callback_url must not carry credentials; callbacks are signed instead")
		}
	}
	if r.Timeout < 0 || (r.Timeout > 0 && r.Timeout < MinTimeout) {
		return invalid("invalid_timeout", "timeout must be at least %s", MinTimeout)
	}
	return nil
}

// checkCallbackHost refuses a callback_url whose host already says it is not public (an IP literal or
// localhost). A name is left to the dial, where every address it resolves to is checked.
func (s *Service) checkCallbackHost(callbackURL string) error {
	if callbackURL == "" {
		return nil
	}
	u, err := url.Parse(callbackURL)
	if err != nil {
		return invalid("invalid_callback_url", "callback_url must be an absolute http(s) URL")
	}
	var re *netguard.RefusedError
	if err := s.cfg.CallbackPolicy.CheckHost(u.Hostname()); errors.As(err, &re) {
		return invalid("callback_url_refused", "callback_url is not a public address (%s); Ony calls back only public "+
			"addresses unless its operator allows others (callbacks.allow_private, callbacks.allow_cidrs)", re.Range)
	}
	return nil
}

func normalizeOptions(opts *[]store.Option) error {
	if len(*opts) == 0 {
		*opts = DefaultOptions()
		return nil
	}
	if len(*opts) < 2 || len(*opts) > MaxOptions {
		return invalid("invalid_options", "give between 2 and %d options", MaxOptions)
	}
	seen := map[string]bool{}
	var approves, refuses bool
	for i := range *opts {
		o := &(*opts)[i]
		if !utf8.ValidString(o.Label) {
			return invalid("invalid_options", "option labels must be valid UTF-8")
		}
		o.Label = strings.TrimSpace(stripBidi(o.Label))
		if !optionIDRE.MatchString(o.ID) {
			return invalid("invalid_options", "option ids are 1-32 lowercase letters, digits, _ or -")
		}
		if seen[o.ID] {
			return invalid("invalid_options", "option id %q is repeated", o.ID)
		}
		seen[o.ID] = true
		if o.Label == "" || utf8.RuneCountInString(o.Label) > 100 || hasControl(o.Label, false) {
			return invalid("invalid_options", "option %q needs a one-line label of at most 100 characters", o.ID)
		}
		approves = approves || o.Approves
		refuses = refuses || !o.Approves
	}
	if !approves || !refuses {
		// A human must always be able to say yes and to say no.
		return invalid("invalid_options", "options need at least one that approves and one that does not")
	}
	return nil
}

// stripBidi removes bidirectional controls (U+202A–U+202E embeddings and overrides, U+2066–U+2069
// isolates, U+200E/U+200F/U+061C marks) from text a person reads: an override makes text display
// otherwise than it is (U+202E before "txt.exe" shows "exe.txt"). The gist already drops them for
// channels; dropping them here makes the console, the API and every channel show the same text.
// They are removed, not replaced by a space as the gist does, because they are invisible and a space
// would change the words; joining is safe here since redaction runs later, on the result.
func stripBidi(s string) string {
	if !strings.ContainsFunc(s, isBidi) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBidi(r) {
			return -1
		}
		return r
	}, s)
}

func isBidi(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }

func hasControl(s string, allowNewlines bool) bool {
	for _, r := range s {
		if allowNewlines && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// fingerprint identifies a request for Idempotency-Key comparison: the same meaning gives the same
// hash whatever the JSON's spacing or key order.
func (r CreateRequest) fingerprint() []byte {
	b, _ := json.Marshal(struct {
		A, T, S string
		O       []store.Option
		P       *Payload
		L       map[string]string
		C       string
		D       time.Duration
	}{r.Action, r.Title, r.Summary, r.Options, r.Payload, r.Labels, r.CallbackURL, r.Timeout})
	sum := sha256.Sum256(b)
	return sum[:]
}

func payloadAAD(orgID, id string) []byte {
	return []byte(fmt.Sprintf("handoff.payload|%s|%s", orgID, id))
}
