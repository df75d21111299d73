// Package audit keeps one RFC 6962 Merkle log per organization — who decided what, and when — with
// signed checkpoints, inclusion and consistency proofs, verification and offline export.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// EventType is the closed set of things the log records.
type EventType string

const (
	HandoffCreated   EventType = "handoff.created"
	HandoffDecided   EventType = "handoff.decided"
	HandoffExpired   EventType = "handoff.expired"
	HandoffCancelled EventType = "handoff.cancelled"
	MemberInvited    EventType = "member.invited"
	MemberRole       EventType = "member.role_changed"
	MemberOff        EventType = "member.deactivated"
	DeviceCreated    EventType = "device.created"
	DeviceRevoked    EventType = "device.revoked"
	LadderChanged    EventType = "ladder.changed"
	PayloadScrubbed  EventType = "payload.scrubbed" // a retention sweep, per org: subject org, details count and days
	StepUpFailed     EventType = "stepup.failed"
	OrgCreated       EventType = "org.created"
	OrgErased        EventType = "org.erased" // in the instance log only
)

// A person's password replaced by an administrator (all their sessions end) or by themselves (their
// other sessions end). The log never holds a password or its hash.
const (
	MemberPasswordReset   EventType = "member.password_reset"
	MemberPasswordChanged EventType = "member.password_changed"
)

// Identity (issue 13): an admin invites an email (the subject is the invite, never its code or link); the
// invited person joins (subject: their new user); an admin reactivates a member; someone asks for a
// password-reset link (recorded against the person, by the system, since nobody is signed in); an admin
// changes the organization's settings.
const (
	InviteCreated      EventType = "invite.created"
	MemberJoined       EventType = "member.joined"
	MemberReactivated  EventType = "member.reactivated"
	MemberResetAsked   EventType = "member.reset_requested"
	OrgSettingsChanged EventType = "org.settings_changed"
)

var eventTypes = []EventType{HandoffCreated, HandoffDecided, HandoffExpired, HandoffCancelled, MemberInvited,
	MemberRole, MemberOff, DeviceCreated, DeviceRevoked, LadderChanged, PayloadScrubbed, StepUpFailed, OrgCreated, OrgErased,
	MemberPasswordReset, MemberPasswordChanged,
	InviteCreated, MemberJoined, MemberReactivated, MemberResetAsked, OrgSettingsChanged}

// Actor is who acted, with their role at the time. Names live outside the log (the export's member
// directory), so a person can be anonymised without breaking a hash.
type Actor struct {
	Kind string `json:"kind"`           // user | device | system
	ID   string `json:"id"`             // an opaque id
	Role string `json:"role,omitempty"` // admin | member | viewer for people
}

// Subject is what the event is about.
type Subject struct {
	Kind string `json:"kind"` // handoff | user | device | ladder | org | invite
	ID   string `json:"id"`
}

// Details are short, closed-vocabulary facts. There is deliberately no free-text field: payloads,
// commands, titles, tokens, phone numbers and chat ids cannot be expressed here.
type Details struct {
	Action    string   `json:"action,omitempty"`       // dotted lowercase action type
	Risk      string   `json:"risk,omitempty"`         // low | medium | high | critical
	Reasons   []string `json:"reasons,omitempty"`      // risk reason codes
	TitleHash string   `json:"title_sha256,omitempty"` // hex SHA-256 of the title, never the title
	Role      string   `json:"role,omitempty"`         // a member's new role
	SHA256    string   `json:"sha256,omitempty"`       // hex digest of a changed document (a ladder's YAML)
	Size      int64    `json:"size,omitempty"`         // an erased log's final size
	Root      string   `json:"root,omitempty"`         // an erased log's final root (base64)
	Code      string   `json:"code,omitempty"`         // a closed-enum failure code
	Option    string   `json:"option,omitempty"`       // the option a person chose
	Method    string   `json:"method,omitempty"`       // how a chat account was linked: code | email
	// Payload retention (issue 17): how many payloads a sweep scrubbed, and the window in days.
	Count int64 `json:"count,omitempty"`
	Days  int   `json:"days,omitempty"`
}

// Event is one leaf. Encode is its only serialisation; stored leaves are never re-encoded.
type Event struct {
	V       int       `json:"v"`
	Type    EventType `json:"type"`
	At      time.Time `json:"at"`
	Actor   Actor     `json:"actor"`
	Subject Subject   `json:"subject"`
	Channel string    `json:"channel,omitempty"` // api | system | a channel kind: console, slack, sms, call...
	Outcome string    `json:"outcome,omitempty"` // a final status
	Details *Details  `json:"details,omitempty"`
}

var (
	idRE      = lazyregexp.New(`^[A-Za-z0-9_.:-]{1,64}$`)
	actionRE  = lazyregexp.New(`^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`)
	tokenRE   = lazyregexp.New(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	hexRE     = lazyregexp.New(`^[0-9a-f]{64}$`)
	b64RE     = lazyregexp.New(`^[A-Za-z0-9+/]{43}=$`)
	actorKind = []string{"user", "device", "system"}
	subjects  = []string{"handoff", "user", "device", "ladder", "org", "invite"}
	roles     = []string{"admin", "member", "viewer"}
	// channelRE is the shape of a channel: api, system, or a channel kind's name (the channel package
	// holds kind names to the same rule), so new kinds need no change here and no free text fits.
	channelRE = lazyregexp.New(`^[a-z][a-z0-9_]{0,31}$`)
	risks     = []string{"low", "medium", "high", "critical"}
)

// KnownReason reports whether a risk reason code may enter the log; set by the caller that owns the
// vocabulary (the risk package) so audit does not depend on it.
type KnownReason func(string) bool

// Validate refuses anything outside the closed vocabulary, so no caller can smuggle free text in.
func (e Event) Validate(known KnownReason) error {
	bad := func(field string) error { return fmt.Errorf("audit: event %s: invalid %s", e.Type, field) }
	switch {
	case e.V != 1:
		return bad("version")
	case !slices.Contains(eventTypes, e.Type):
		return fmt.Errorf("audit: unknown event type %q", e.Type)
	case e.At.IsZero():
		return bad("time")
	case !slices.Contains(actorKind, e.Actor.Kind) || !idRE.MatchString(e.Actor.ID):
		return bad("actor")
	case e.Actor.Role != "" && !slices.Contains(roles, e.Actor.Role):
		return bad("actor role")
	case !slices.Contains(subjects, e.Subject.Kind) || !idRE.MatchString(e.Subject.ID):
		return bad("subject")
	case e.Channel != "" && !channelRE.MatchString(e.Channel):
		return bad("channel")
	case e.Outcome != "" && !tokenRE.MatchString(e.Outcome):
		return bad("outcome")
	}
	if d := e.Details; d != nil {
		switch {
		case d.Action != "" && (len(d.Action) > 100 || !actionRE.MatchString(d.Action)):
			return bad("action")
		case d.Risk != "" && !slices.Contains(risks, d.Risk):
			return bad("risk")
		case d.TitleHash != "" && !hexRE.MatchString(d.TitleHash):
			return bad("title hash")
		case d.SHA256 != "" && !hexRE.MatchString(d.SHA256):
			return bad("sha256")
		case d.Role != "" && !slices.Contains(roles, d.Role):
			return bad("role")
		case d.Root != "" && !b64RE.MatchString(d.Root):
			return bad("root")
		case d.Code != "" && !tokenRE.MatchString(d.Code):
			return bad("code")
		case d.Option != "" && !tokenRE.MatchString(d.Option):
			return bad("option")
		case d.Method != "" && d.Method != LinkMethodCode && d.Method != LinkMethodEmail:
			return bad("method")
		case d.Size < 0:
			return bad("size")
		case d.Count < 0:
			return bad("count")
		case d.Days < 0:
			return bad("days")
		}
		for _, r := range d.Reasons {
			if known == nil || !known(r) {
				return bad("reason")
			}
		}
	}
	return nil
}

// Encode returns the canonical bytes of e: compact JSON in struct order, UTC time with nanoseconds.
func (e Event) Encode(known KnownReason) ([]byte, error) {
	if err := e.Validate(known); err != nil {
		return nil, err
	}
	e.At = e.At.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Decode parses a leaf for display. Verification never depends on it: it hashes the stored bytes.
func Decode(data []byte) (Event, error) {
	var e Event
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&e)
	return e, err
}

// TitleHash is the hex SHA-256 recorded instead of a handoff's title, which is free text an agent
// wrote and could carry a secret.
func TitleHash(title string) string {
	sum := sha256.Sum256([]byte(title))
	return hex.EncodeToString(sum[:])
}
