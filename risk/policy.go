package risk

// Organisation policy.
//
// An organisation tunes the built-in tables with a YAML file; ParsePolicy
// reads it (policy_parse.go), Policy.Engine turns it into an Engine
// (policy_build.go) and Engine.Explain shows what the result makes of an
// input (explain.go). The format:
//
//	version: 1                       # required; 1 is the only version
//	rules:
//	  disable: [git.protected_branch_push]   # built-in rule ids to switch off
//	  levels:                                # a built-in rule's level, raised or lowered
//	    shell.chmod_world_writable: high
//	    shell.rm_recursive: low
//	  add:                                   # organisation rules, the shape of Rule
//	    - id: acme.billing_prod              # required: lower-case letters, digits, '.', '_', '-';
//	                                         #   not a built-in id, unique in the file
//	      reason: payment                    # required: a known reason code (AllReasons)
//	      level: critical                    # required: low, medium, high or critical
//	      actions: ["payment", "billing.*"]  # required action globs; "*" is every action
//	      kinds: [command, text]             # optional payload kinds; "" is "not stated"
//	      keywords: [refund]                 # optional prefilter, see Rule.Keywords
//	      pattern: '(?i)refund\s+--all'      # optional RE2 over the payload
//	      require: ['--yes']                 # optional, see Rule.Require
//	      unless: ['--dry-run']              # optional, see Rule.Unless
//	      fold: false                        # optional, see Rule.Fold
//	      word_start: false                  # optional, see Rule.WordStart
//	      within: "\n"                       # optional, see Rule.Within
//	      labels: { keys: [env], values: [prod] }   # optional, see LabelSelector
//	floors:                                  # minimum levels
//	  actions: { "db.migrate": high, "infra.*": medium }     # action glob: level
//	  labels:  { "env=prod": high, "team=*": medium }        # key=value: level; value * is any value
//
// Semantics:
//
//   - Unknown keys, unknown rule ids, unknown reasons, bad levels, bad
//     regular expressions, bad globs and duplicates are errors, all reported
//     at once with their positions (see PolicyErrors).
//   - rules.levels may lower a built-in rule as well as raise it (an
//     organisation may decide that a push to main is low), but no level goes
//     below low. A rule cannot be both disabled and given a level.
//   - A floor applies whenever its action glob matches the handoff's action,
//     or the handoff carries the label (keys and values compare
//     case-insensitively after trimming, as in LabelSelector). Every floor
//     that applies raises the level to at least its own, adds the reason
//     org_policy and is listed in Assessment.Rules as "floor:action:<glob>" or
//     "floor:label:<key>=<value>", after the rules, in file order. A floor of
//     low would never change anything, so it is an error.
//   - The action table (DefaultBase) is not tunable: floors only raise it.
//
// The agent's own claim about risk has no way in: Input has no field for it,
// a policy only reshapes the tables that Derive reads, and Derive is a pure
// function of the Input and those tables.

import (
	"fmt"

	"github.com/ony-ai/ony/internal/lazyregexp"
)

// PolicyVersion is the only policy format version this package reads.
const PolicyVersion = 1

// MaxPolicyBytes bounds a policy file, so that a wrong path such as
// /dev/zero or a huge document fails fast.
const MaxPolicyBytes = 1 << 20

// Policy is an organisation's tuning of the built-in tables. ParsePolicy
// fills it from YAML; it may also be built in Go, and Engine validates it
// either way. Slices keep file order, which fixes the order of
// Assessment.Rules.
type Policy struct {
	Version int
	// Disable lists built-in rule ids to switch off.
	Disable []string
	// Levels changes the level of built-in rules, up or down.
	Levels []LevelOverride
	// Add holds the organisation's own rules, run after the built-in ones.
	Add []Rule
	// ActionFloors and LabelFloors set minimum levels.
	ActionFloors []ActionFloor
	LabelFloors  []LabelFloor
}

// LevelOverride gives the built-in rule ID a new level.
type LevelOverride struct {
	ID    string
	Level Level
}

// ActionFloor raises every handoff whose action matches the glob Action to
// at least Level.
type ActionFloor struct {
	Action string
	Level  Level
}

// LabelFloor raises every handoff carrying label Key with Value (or any
// value when Value is "*") to at least Level.
type LabelFloor struct {
	Key, Value string
	Level      Level
}

// policyRuleID is the form of an added rule's id.
var policyRuleID = lazyregexp.New(`^[a-z0-9][a-z0-9_.-]{0,99}$`)

// globProblem says what is wrong with an action glob, or "". Actions are
// dotted lower-case words, so anything else in a glob (a '?', '[' or a
// space) could only ever fail to match, silently.
func globProblem(g string) string {
	g = normalize(g)
	if g == "" {
		return "empty action glob"
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '*') {
			return fmt.Sprintf("action glob %q may only use letters, digits, '.', '_', '-' and '*'", g)
		}
	}
	return ""
}

// labelKey is the form of the label keys handoffs may carry (the handoff
// package enforces it); a policy key of any other form could never match.
var labelKey = lazyregexp.New(`^[a-z0-9][a-z0-9_./-]{0,62}$`)
