// Package escalation climbs each handoff's ladder until a human decides: ladders parsed from YAML,
// steps run as durable jobs, and the Channel interface every way of reaching a person plugs into.
package escalation

import (
	"time"
)

// End says what happens when a ladder has been climbed Repeat+1 times and nobody decided.
type End string

const (
	// EndExpire expires the handoff (never an implicit approve or deny).
	EndExpire End = "expire"
	// EndWait leaves it pending in the console until its own timeout.
	EndWait End = "wait"
)

// Quiet says whether a step reaches people during their quiet hours.
type Quiet string

const (
	QuietRespect Quiet = "respect" // skip people in quiet hours (the default)
	QuietIgnore  Quiet = "ignore"  // reach them anyway
)

// Ladder is one escalation policy. Its JSON form is what gets frozen onto a handoff, so it must stay
// readable by later versions: add fields, never rename them.
type Ladder struct {
	Name string `json:"name"`
	// Version is 0 for ladders loaded from files and counts up for ladders put through the API.
	Version int `json:"version"`
	// Origin is "file:<path>", "api" or "builtin".
	Origin string `json:"origin"`
	// Order sorts ladders for matching, lowest first (default 100; ties by name).
	Order int `json:"order"`
	// Default marks the ladder used when no other matches; it is tried last.
	Default bool   `json:"default,omitempty"`
	Match   Match  `json:"match"`
	Steps   []Step `json:"steps"`
	// Repeat is how many more times the steps are climbed after the first time.
	Repeat int `json:"repeat"`
	End    End `json:"end"`
}

// Match selects handoffs. Every non-empty part must match; an empty Match matches everything.
type Match struct {
	// Risk levels (low, medium, high, critical); any of them.
	Risk []string `json:"risk,omitempty"`
	// Actions are path.Match globs on the action ("deploy.*", "db.migrate"); any of them.
	Actions []string `json:"actions,omitempty"`
	// Labels must all be present; values are path.Match globs ("prod*").
	Labels map[string]string `json:"labels,omitempty"`
}

// Step is one rung: reach Targets on Channels, then Wait before the next step.
type Step struct {
	Name     string        `json:"name,omitempty"`
	Channels []string      `json:"channels"`
	Targets  []Target      `json:"targets"`
	Wait     time.Duration `json:"wait"`
	Quiet    Quiet         `json:"quiet_hours"`
	// OverrideQuietAt reaches people in quiet hours anyway when the handoff's risk is at or above
	// this level; empty = never.
	OverrideQuietAt string `json:"override_quiet_hours_at,omitempty"`
	// Redial calls again on no answer or busy.
	Redial Redial `json:"redial,omitempty"`
	// Providers orders the providers tried for a channel kind (failover); absent = configured order.
	Providers map[string][]string `json:"providers,omitempty"`
}

// Redial is how often and how far apart a call is retried when nobody picks up.
type Redial struct {
	Times int           `json:"times,omitempty"`
	Gap   time.Duration `json:"gap,omitempty"`
}

// TargetKind says what a target names.
type TargetKind string

// People targets; any other kind is a channel kind's shared destination (slack:#ops, webhook:teams).
const (
	TargetUser  TargetKind = "user"  // an email address
	TargetGroup TargetKind = "group" // group:<name>: users whose Groups hold it
	TargetRole  TargetKind = "role"  // role:admin|member
)

// Target is who a step reaches. In YAML it is one string: "ana@example.com", "group:dba",
// "role:admin", or a shared destination of a channel kind: "slack:#ops", "telegram:-1001234",
// "webhook:teams".
type Target struct {
	Kind  TargetKind `json:"kind"`
	Value string     `json:"value"`
}

// String is the target's YAML form.
func (t Target) String() string {
	if t.Kind == TargetUser {
		return t.Value
	}
	return string(t.Kind) + ":" + t.Value
}

// Team reports whether the target is a shared destination rather than people.
func (t Target) Team() bool {
	return t.Kind != TargetUser && t.Kind != TargetGroup && t.Kind != TargetRole
}
