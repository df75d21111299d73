package risk

// Organisation policy.
//
// An organisation tunes the built-in tables with a YAML file; ParsePolicy
// reads it and Policy.Engine turns it into an Engine. The format:
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
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// PolicyVersion is the only policy format version this package reads.
const PolicyVersion = 1

// MaxPolicyBytes bounds a policy file, so that a wrong path such as
// /dev/zero or a huge document fails fast.
const MaxPolicyBytes = 1 << 20

// maxPolicyNodes bounds the YAML nodes the parser visits, following aliases,
// so that a small file of nested aliases cannot make it work for ever.
const maxPolicyNodes = 200_000

// Where a rule of an Engine came from, as reported by Explain.
const (
	OriginBuiltin = "builtin" // DefaultRules, possibly with a policy level
	OriginPolicy  = "policy"  // added by a Policy
	OriginCustom  = "custom"  // passed to New or NewWithBase directly
)

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

// PolicyErrors is every mistake ParsePolicy found, in file order, so that they can all be fixed in
// one pass. Path names the offending value, e.g. rules.add[0].pattern or floors.actions["db.migrate"].
type PolicyErrors = yamlnode.Diagnostics

// ParsePolicy reads a policy file (see the format above). filename only
// labels positions. On any mistake it returns a *PolicyErrors holding all of
// them; a Policy it returns always builds an Engine.
func ParsePolicy(data []byte, filename string) (*Policy, error) {
	pp := &policyParser{file: filename}
	pp.Walker = yamlnode.Walker{Max: maxPolicyNodes, Input: "policy", Add: pp.add}
	p := pp.parse(data)
	if len(pp.errs) > 0 {
		yamlnode.Sort(pp.errs, nil)
		return nil, &PolicyErrors{List: pp.errs}
	}
	return p, nil
}

type policyParser struct {
	yamlnode.Walker
	file string
	errs []yamlnode.Diagnostic
}

func (pp *policyParser) add(n *yaml.Node, path, msg string) {
	pp.errs = append(pp.errs, yamlnode.At(pp.file, n, path, msg))
}

func (pp *policyParser) addf(n *yaml.Node, path, format string, args ...any) {
	pp.add(n, path, fmt.Sprintf(format, args...))
}

func (pp *policyParser) syntaxError(err error, data []byte) {
	line, col, msg := yamlnode.SyntaxError(err, data)
	pp.errs = append(pp.errs, yamlnode.Diagnostic{File: pp.file, Line: line, Column: col, Msg: msg})
}

func (pp *policyParser) parse(data []byte) *Policy {
	if len(data) > MaxPolicyBytes {
		pp.errs = append(pp.errs, yamlnode.Diagnostic{File: pp.file,
			Msg: fmt.Sprintf("policy is %d bytes; the limit is %d", len(data), MaxPolicyBytes)})
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			pp.errs = append(pp.errs, yamlnode.Diagnostic{File: pp.file, Line: 1, Column: 1,
				Msg: "empty policy; it needs at least \"version: 1\""})
		} else {
			pp.syntaxError(err, data)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			pp.syntaxError(err, data)
		} else {
			pp.addf(&extra, "", "a second YAML document is not allowed; put everything in one")
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			pp.addf(root, "", "empty policy; it needs at least \"version: 1\"")
			return nil
		}
		root = root.Content[0]
	}
	root = pp.Resolve(root)
	if yamlnode.IsNull(root) {
		pp.addf(root, "", "empty policy; it needs at least \"version: 1\"")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		pp.addf(root, "", "the top level must be a mapping, got %s", yamlnode.Describe(root))
		return nil
	}

	p := &Policy{}
	var rulesNode, floorsNode *yaml.Node
	version := false
	pp.Mapping(root, "", []string{"version", "rules", "floors"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "version":
			version = true
			pp.version(v, p)
		case "rules":
			rulesNode = v
		case "floors":
			floorsNode = v
		}
	})
	if !version {
		pp.addf(root, "version", "missing; start the policy with \"version: %d\"", PolicyVersion)
	}
	if rulesNode != nil {
		pp.rules(rulesNode, p)
	}
	if floorsNode != nil {
		pp.floors(floorsNode, p)
	}
	return p
}

func (pp *policyParser) version(n *yaml.Node, p *Policy) {
	n = pp.Resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if v, err := strconv.Atoi(n.Value); err == nil && v == PolicyVersion {
			p.Version = v
			return
		}
	}
	pp.addf(n, "version", "unsupported version %s; this Ony reads version %d", yamlnode.DescribeValue(n), PolicyVersion)
}

func (pp *policyParser) rules(n *yaml.Node, p *Policy) {
	nodes := map[string]*yaml.Node{}
	pp.Mapping(n, "rules", []string{"disable", "levels", "add"}, func(key string, _, v *yaml.Node) { nodes[key] = v })

	builtin := map[string]bool{}
	var builtinIDs []string
	for _, r := range DefaultRules() {
		builtin[r.ID] = true
		builtinIDs = append(builtinIDs, r.ID)
	}

	disabledAt := map[string]int{}
	if v := nodes["disable"]; v != nil {
		for i, item := range pp.Seq(v, "rules.disable") {
			path := fmt.Sprintf("rules.disable[%d]", i)
			id, ok := pp.Str(item, path)
			switch {
			case !ok:
			case !builtin[id]:
				pp.addf(item, path, "unknown built-in rule %q%s", id, yamlnode.Suggest(id, builtinIDs))
			case disabledAt[id] > 0:
				pp.addf(item, path, "rule %q is already disabled on line %d", id, disabledAt[id])
			default:
				disabledAt[id] = item.Line
				p.Disable = append(p.Disable, id)
			}
		}
	}

	// Added ids first, so that a level for one of them gets a helpful message.
	var added map[string]int
	if v := nodes["add"]; v != nil {
		added = pp.addRules(v, p, builtin)
	}

	if v := nodes["levels"]; v != nil {
		pp.Entries(v, "rules.levels", nil, func(id, path string, k, v *yaml.Node) {
			l, lok := pp.level(v, path)
			switch {
			case added[id] > 0:
				pp.addf(k, path, "rules.levels changes built-in rules; set the level of %q where it is added (line %d)", id, added[id])
			case !builtin[id]:
				pp.addf(k, path, "unknown built-in rule %q%s", id, yamlnode.Suggest(id, builtinIDs))
			case disabledAt[id] > 0:
				pp.addf(k, path, "rule %q is disabled on line %d, so a level for it has no effect", id, disabledAt[id])
			case lok:
				p.Levels = append(p.Levels, LevelOverride{ID: id, Level: l})
			}
		})
	}
}

var policyRuleID = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,99}$`)

// addRules parses rules.add and returns the line of every id it accepted.
func (pp *policyParser) addRules(n *yaml.Node, p *Policy, builtin map[string]bool) map[string]int {
	idAt := map[string]int{}
	for i, item := range pp.Seq(n, "rules.add") {
		path := fmt.Sprintf("rules.add[%d]", i)
		r, idNode, ok := pp.rule(item, path)
		if idNode != nil && r.ID != "" {
			switch {
			case builtin[r.ID]:
				pp.addf(idNode, path+".id", "%q is a built-in rule; change it with rules.levels or rules.disable, or pick another id", r.ID)
				ok = false
			case idAt[r.ID] > 0:
				pp.addf(idNode, path+".id", "duplicate id %q (first on line %d)", r.ID, idAt[r.ID])
				ok = false
			default:
				idAt[r.ID] = idNode.Line
			}
		}
		if ok {
			p.Add = append(p.Add, r)
		}
	}
	return idAt
}

var ruleKeys = []string{"id", "reason", "level", "actions", "kinds", "keywords", "pattern", "require", "unless",
	"fold", "word_start", "within", "labels"}

// rule parses one added rule. Every field is checked where it is written;
// the checks New makes across fields come after, at the field that breaks
// them. It returns the id's value node for the caller's duplicate check.
func (pp *policyParser) rule(n *yaml.Node, path string) (r Rule, idNode *yaml.Node, ok bool) {
	before := len(pp.errs)
	if n := pp.Resolve(n); yamlnode.IsNull(n) {
		pp.addf(n, path, "expected a rule (a mapping), got null")
		return r, nil, false
	}
	keyAt := map[string]*yaml.Node{} // key nodes of the fields present
	var patternNode, labelsNode *yaml.Node
	var keywordNodes, requireNodes, unlessNodes []*yaml.Node

	isMap := pp.Mapping(n, path, ruleKeys, func(key string, k, v *yaml.Node) {
		keyAt[key] = k
		fp := path + "." + key
		switch key {
		case "id":
			if s, ok := pp.Str(v, fp); ok {
				idNode = pp.Resolve(v)
				if !policyRuleID.MatchString(s) {
					pp.addf(idNode, fp, "id %q must be 1 to 100 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", s)
				} else {
					r.ID = s
				}
			}
		case "reason":
			if s, ok := pp.Str(v, fp); ok {
				r.Reason = Reason(s)
				if !KnownReason(r.Reason) {
					pp.addf(pp.Resolve(v), fp, "unknown reason %q%s", s, reasonHint(s))
				}
			}
		case "level":
			r.Level, _ = pp.level(v, fp)
		case "actions":
			errsBefore := len(pp.errs)
			items, nodes := pp.StrList(v, fp)
			for i, a := range items {
				if msg := globProblem(a); msg != "" {
					pp.addf(nodes[i], fmt.Sprintf("%s[%d]", fp, i), "%s", msg)
				}
			}
			r.Actions = items
			if len(items) == 0 && len(pp.errs) == errsBefore {
				pp.addf(pp.Resolve(v), fp, `no actions; use ["*"] for every action`)
			}
		case "kinds":
			items, nodes := pp.StrList(v, fp)
			for i, kind := range items {
				if !knownKind(normalize(kind)) {
					pp.addf(nodes[i], fmt.Sprintf("%s[%d]", fp, i), "unknown payload kind %q; use %s, %s, %s, %s or \"\" (not stated)",
						kind, KindCommand, KindDiff, KindLog, KindText)
				}
			}
			r.Kinds = items
		case "keywords":
			r.Keywords, keywordNodes = pp.StrList(v, fp)
			for i, kw := range r.Keywords {
				ip := fmt.Sprintf("%s[%d]", fp, i)
				switch {
				case kw == "":
					pp.addf(keywordNodes[i], ip, "empty keyword")
				case !isASCII(kw):
					pp.addf(keywordNodes[i], ip, "keyword %q is not ASCII; the prefilter folds ASCII only, so it could never match", kw)
				case strings.IndexByte(kw, '\n') >= 0:
					pp.addf(keywordNodes[i], ip, "keyword %q contains a newline", kw)
				}
			}
		case "pattern":
			if s, ok := pp.Str(v, fp); ok {
				patternNode = pp.Resolve(v)
				if s == "" {
					pp.addf(patternNode, fp, "empty pattern; leave the key out for a rule that does not read the payload")
				} else if _, err := regexp.Compile(s); err != nil {
					pp.addf(patternNode, fp, "bad regexp: %v", err)
				} else {
					r.Pattern = s
				}
			}
		case "require", "unless":
			items, nodes := pp.StrList(v, fp)
			for i, x := range items {
				if _, err := regexp.Compile(x); err != nil {
					pp.addf(nodes[i], fmt.Sprintf("%s[%d]", fp, i), "bad regexp: %v", err)
				}
			}
			if key == "require" {
				r.Require, requireNodes = items, nodes
			} else {
				r.Unless, unlessNodes = items, nodes
			}
		case "fold":
			r.Fold, _ = pp.boolean(v, fp)
		case "word_start":
			r.WordStart, _ = pp.boolean(v, fp)
		case "within":
			if s, ok := pp.Str(v, fp); ok {
				if len(s) != 1 || !isSeparator(s[0]) {
					pp.addf(pp.Resolve(v), fp, `within %q must be one ASCII punctuation or space character, e.g. "\n" or ";"`, s)
				} else {
					r.Within = s
				}
			}
		case "labels":
			labelsNode = k
			pp.Mapping(v, fp, []string{"keys", "values"}, func(key string, _, lv *yaml.Node) {
				lp := fp + "." + key
				items, nodes := pp.StrList(lv, lp)
				for i, s := range items {
					ip := fmt.Sprintf("%s[%d]", lp, i)
					switch {
					case normalize(s) == "":
						pp.addf(nodes[i], ip, "empty label %s", strings.TrimSuffix(key, "s"))
					case key == "keys" && !labelKey.MatchString(normalize(s)):
						pp.addf(nodes[i], ip, "%s", labelKeyProblem(s))
					}
				}
				if key == "keys" {
					r.Label.Keys = items
				} else {
					r.Label.Values = items
				}
			})
		}
	})
	if !isMap {
		return r, nil, false
	}
	for _, req := range []string{"id", "reason", "level", "actions"} {
		if keyAt[req] == nil {
			pp.addf(n, path, "missing required key %q", req)
		}
	}

	// Checks across fields, mirroring compile, each at the field at fault.
	if keyAt["pattern"] == nil {
		for _, key := range []string{"keywords", "require", "unless", "within", "fold", "word_start"} {
			if keyAt[key] != nil {
				pp.addf(keyAt[key], path+"."+key, "a rule with %s needs a pattern", key)
			}
		}
	}
	if r.Pattern != "" {
		if len(r.Keywords) > 0 && startsText(r.Pattern) {
			pp.addf(patternNode, path+".pattern", `pattern uses \A or a non-multiline ^, which keywords do not allow; use (?m)^`)
		}
		if r.Fold && upperLiteral(r.Pattern) {
			pp.addf(patternNode, path+".pattern", "pattern has an upper-case letter, which can never match with fold: true")
		}
	}
	if r.Fold {
		for _, x := range []struct {
			key   string
			exprs []string
			nodes []*yaml.Node
		}{{"require", r.Require, requireNodes}, {"unless", r.Unless, unlessNodes}} {
			for i, e := range x.exprs {
				if upperLiteral(e) {
					pp.addf(x.nodes[i], fmt.Sprintf("%s.%s[%d]", path, x.key, i), "%q has an upper-case letter, which can never match with fold: true", e)
				}
			}
		}
	}
	if r.Within != "" {
		for i, kw := range r.Keywords {
			if strings.Contains(kw, r.Within) {
				pp.addf(keywordNodes[i], fmt.Sprintf("%s.keywords[%d]", path, i), "keyword %q contains the within separator %q", kw, r.Within)
			}
		}
	}
	if len(r.Label.Values) > 0 && len(r.Label.Keys) == 0 {
		pp.addf(labelsNode, path+".labels", "label values without keys")
	}

	ok = len(pp.errs) == before
	if ok {
		// A safety net: whatever New would still refuse is reported at the rule.
		if _, problems := compile(r); len(problems) > 0 {
			for _, msg := range problems {
				pp.addf(n, path, "%s", msg)
			}
			ok = false
		}
	}
	return r, idNode, ok
}

func (pp *policyParser) floors(n *yaml.Node, p *Policy) {
	pp.Mapping(n, "floors", []string{"actions", "labels"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "actions":
			pp.Entries(v, "floors.actions", normalize, func(glob, path string, k, v *yaml.Node) {
				l, lok := pp.floorLevel(v, path)
				if msg := globProblem(glob); msg != "" {
					pp.addf(k, path, "%s", msg)
				} else if lok {
					p.ActionFloors = append(p.ActionFloors, ActionFloor{Action: normalize(glob), Level: l})
				}
			})
		case "labels":
			pp.Entries(v, "floors.labels", normalize, func(kv, path string, k, v *yaml.Node) {
				l, lok := pp.floorLevel(v, path)
				key, value, found := strings.Cut(kv, "=")
				key, value = normalize(key), normalize(value)
				switch {
				case !found || key == "" || value == "":
					pp.addf(k, path, "want key=value, e.g. env=prod (a value of * matches any value), got %q", kv)
				case !labelKey.MatchString(key):
					pp.addf(k, path, "%s", labelKeyProblem(key))
				case lok:
					p.LabelFloors = append(p.LabelFloors, LabelFloor{Key: key, Value: value, Level: l})
				}
			})
		}
	})
}

func (pp *policyParser) floorLevel(n *yaml.Node, path string) (Level, bool) {
	l, ok := pp.level(n, path)
	if ok && l == Low {
		pp.addf(pp.Resolve(n), path, "a floor of low has no effect: every handoff is at least low")
		return l, false
	}
	return l, ok
}

func (pp *policyParser) boolean(n *yaml.Node, path string) (bool, bool) {
	n = pp.Resolve(n)
	if !pp.Visit(n) {
		return false, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(n.Value); err == nil {
			return b, true
		}
	}
	pp.addf(n, path, "expected true or false, got %s", yamlnode.DescribeValue(n))
	return false, false
}

func (pp *policyParser) level(n *yaml.Node, path string) (Level, bool) {
	n = pp.Resolve(n)
	if !pp.Visit(n) {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if l, err := ParseLevel(n.Value); err == nil {
			return l, true
		}
	}
	pp.addf(n, path, "bad level %s; use low, medium, high or critical", yamlnode.DescribeValue(n))
	return 0, false
}

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
var labelKey = regexp.MustCompile(`^[a-z0-9][a-z0-9_./-]{0,62}$`)

func labelKeyProblem(k string) string {
	return fmt.Sprintf("label key %q can never match: label keys are 1 to 63 letters, digits, '_', '.', '/' or '-', starting with a letter or digit", k)
}

func reasonHint(s string) string {
	known := make([]string, 0, len(AllReasons()))
	for _, r := range AllReasons() {
		known = append(known, string(r))
	}
	if h := yamlnode.Suggest(s, known); h != "" {
		return h
	}
	return "; known reasons: " + strings.Join(known, ", ")
}

// floor is a compiled ActionFloor or LabelFloor.
type floor struct {
	id     string
	level  Level
	action string // the glob of an action floor
	key    string // the label of a label floor; "" for an action floor
	value  string // "*" matches any value
}

func (f *floor) matches(action string, labels map[string]string) bool {
	if f.key == "" {
		return glob(f.action, action)
	}
	for k, v := range labels {
		if strings.EqualFold(strings.TrimSpace(k), f.key) && (f.value == "*" || strings.EqualFold(strings.TrimSpace(v), f.value)) {
			return true
		}
	}
	return false
}

// Engine builds an engine from the built-in tables tuned by p. A nil policy
// gives Default. The error lists every problem, not just the first; a
// policy from ParsePolicy never has any.
func (p *Policy) Engine() (*Engine, error) {
	if p == nil {
		return Default(), nil
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p.Version != PolicyVersion {
		bad("unsupported version %d (want %d)", p.Version, PolicyVersion)
	}

	defaults := DefaultRules()
	index := map[string]int{}
	for i, r := range defaults {
		index[r.ID] = i
	}
	off := map[string]bool{}
	for _, id := range p.Disable {
		switch _, ok := index[id]; {
		case !ok:
			bad("disable: unknown built-in rule %q", id)
		case off[id]:
			bad("disable: rule %q listed twice", id)
		}
		off[id] = true
	}
	level := map[string]Level{}
	for _, lo := range p.Levels {
		_, ok := index[lo.ID]
		switch {
		case !ok:
			bad("levels: unknown built-in rule %q", lo.ID)
		case off[lo.ID]:
			bad("levels: rule %q is disabled", lo.ID)
		case level[lo.ID] != 0:
			bad("levels: rule %q listed twice", lo.ID)
		case !lo.Level.Valid():
			bad("levels: rule %q: invalid level %d", lo.ID, int(lo.Level))
		default:
			level[lo.ID] = lo.Level
		}
	}

	// The built-in rules are taken compiled from Default, which saves
	// compiling their expressions again for every policy. A compiledRule is
	// never changed after New, so sharing its slices and regexps is safe.
	var builtin []compiledRule
	for _, c := range Default().rules {
		if off[c.id] {
			continue
		}
		if l := level[c.id]; l != 0 {
			c.level = l
		}
		builtin = append(builtin, c)
	}
	var added []Rule
	for i, r := range p.Add {
		if _, ok := index[r.ID]; ok {
			bad("add %d: %q is a built-in rule id", i, r.ID)
		} else if r.ID != "" && !policyRuleID.MatchString(r.ID) {
			bad("add %d: id %q must be lower-case letters, digits, '.', '_' or '-'", i, r.ID)
		}
		for _, a := range r.Actions {
			if msg := globProblem(a); msg != "" {
				bad("add %d %q: %s", i, r.ID, msg)
			}
		}
		added = append(added, r.clone())
	}

	var floors []floor
	seen := map[string]bool{}
	addFloor := func(f floor, l Level) {
		switch {
		case !l.Valid():
			bad("%s: invalid level %d", f.id, int(l))
		case l == Low:
			bad("%s: a floor of low has no effect", f.id)
		case seen[f.id]:
			bad("%s: listed twice", f.id)
		default:
			f.level = l
			floors = append(floors, f)
		}
		seen[f.id] = true
	}
	for _, af := range p.ActionFloors {
		g := normalize(af.Action)
		if msg := globProblem(g); msg != "" {
			bad("action floor: %s", msg)
			continue
		}
		addFloor(floor{id: "floor:action:" + g, action: g}, af.Level)
	}
	for _, lf := range p.LabelFloors {
		k, v := normalize(lf.Key), normalize(lf.Value)
		if !labelKey.MatchString(k) || v == "" {
			bad("label floor %q=%q: want a label key and a value", lf.Key, lf.Value)
			continue
		}
		addFloor(floor{id: "floor:label:" + k + "=" + v, key: k, value: v}, lf.Level)
	}

	// New numbers the added rules from 0, as in rules.add.
	e, err := NewWithBase(DefaultBase(), added)
	if len(problems) > 0 {
		perr := errors.New("risk: policy: " + strings.Join(problems, "\nrisk: policy: "))
		return nil, errors.Join(perr, err)
	}
	if err != nil {
		return nil, err
	}
	for i := range e.rules {
		e.rules[i].origin = OriginPolicy
	}
	e.rules = append(builtin, e.rules...)
	e.floors = floors
	e.disabled = slices.Clone(p.Disable)
	return e, nil
}

// Explanation shows how an Engine scored one Input. It carries byte offsets
// into the payload but never payload text, because payloads may hold
// secrets; a local tool can cut the matched text out itself.
type Explanation struct {
	// Action and Kind as the engine read them: trimmed and lower-cased, with
	// an unknown kind read as "" (not stated).
	Action string `json:"action"`
	Kind   string `json:"kind"`
	// Base is the action table entry that gave the starting level.
	Base BaseTrace `json:"base"`
	// Rules has every rule of the engine, in table order.
	Rules []RuleTrace `json:"rules"`
	// Disabled lists the built-in rules the policy switched off.
	Disabled []string `json:"disabled"`
	// Floors has every policy floor, in policy order.
	Floors []FloorTrace `json:"floors"`
	// Assessment is exactly what Derive returns for the same Input.
	Assessment Assessment `json:"assessment"`
}

// BaseTrace is the action table entry that matched. Entry is "" when none
// did, and the level starts at low.
type BaseTrace struct {
	Entry  string `json:"entry"`
	Level  Level  `json:"level"`
	Reason Reason `json:"reason"`
}

// Keyword prefilter outcomes in RuleTrace.Keywords.
const (
	KeywordsNone    = "none"    // the rule has no keywords
	KeywordsPresent = "present" // at least one keyword is in the payload
	KeywordsAbsent  = "absent"  // none is, so the pattern never runs
)

// RuleTrace is what one rule made of the Input.
type RuleTrace struct {
	ID     string `json:"id"`
	Origin string `json:"origin"` // OriginBuiltin, OriginPolicy or OriginCustom
	Reason Reason `json:"reason"`
	// Level is the level the rule raises to; DefaultLevel is the level
	// before the policy changed it (equal when it did not).
	Level        Level `json:"level"`
	DefaultLevel Level `json:"default_level"`
	// The rule is considered when the action, the kind and the labels all
	// match; a rule without a label selector always matches labels.
	ActionMatch bool   `json:"action_match"`
	KindMatch   bool   `json:"kind_match"`
	LabelMatch  bool   `json:"label_match"`
	Considered  bool   `json:"considered"`
	Keywords    string `json:"keywords"`
	Fired       bool   `json:"fired"`
	// Match is the first match of the pattern that counted, or null when the
	// rule did not fire or reads no payload.
	Match *Span `json:"match"`
}

// Span is a half-open range of byte offsets into Input.Payload.
type Span struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// FloorTrace is one policy floor; Applied is true when it matched.
type FloorTrace struct {
	ID      string `json:"id"`
	Level   Level  `json:"level"`
	Applied bool   `json:"applied"`
}

// Explain reports, rule by rule, how e scores in. Its Assessment is Derive's.
func (e *Engine) Explain(in Input) Explanation {
	action := normalize(in.Action)
	kind := normalize(in.PayloadKind)
	if !knownKind(kind) {
		kind = ""
	}
	x := Explanation{
		Action: action, Kind: kind,
		Base:       BaseTrace{Level: Low},
		Rules:      make([]RuleTrace, 0, len(e.rules)),
		Disabled:   append([]string{}, e.disabled...),
		Floors:     make([]FloorTrace, 0, len(e.floors)),
		Assessment: e.Derive(in),
	}
	for _, b := range e.base {
		if glob(b.Action, action) {
			x.Base = BaseTrace{Entry: b.Action, Level: b.Level, Reason: b.Reason}
			break
		}
	}
	p := prepare(in.Payload)
	for i := range e.rules {
		r := &e.rules[i]
		t := RuleTrace{
			ID: r.id, Origin: r.origin, Reason: r.reason, Level: r.level, DefaultLevel: r.defaultLevel,
			ActionMatch: r.actionMatch(action), KindMatch: r.kindMatch(kind),
			LabelMatch: !r.label || r.labelMatch(in.Labels),
			Keywords:   KeywordsNone,
		}
		if len(r.keywords) > 0 {
			t.Keywords = KeywordsAbsent
			if slices.ContainsFunc(r.keywords, func(k string) bool { return strings.Contains(p.lower, k) }) {
				t.Keywords = KeywordsPresent
			}
		}
		t.Considered = t.ActionMatch && t.KindMatch && t.LabelMatch
		switch {
		case !t.Considered:
		case r.re == nil:
			t.Fired = true
		case r.matchPayload(p, true):
			t.Fired = true
			if s, end, ok := r.firstSpan(p.subject(r.fold)); ok {
				t.Match = &Span{Start: originalOffset(in.Payload, s), End: originalOffset(in.Payload, end)}
			}
		}
		x.Rules = append(x.Rules, t)
	}
	for i := range e.floors {
		f := &e.floors[i]
		x.Floors = append(x.Floors, FloorTrace{ID: f.id, Level: f.level, Applied: f.matches(action, in.Labels)})
	}
	return x
}

// firstSpan finds the first match that counts, by the plain definition of
// Within (every piece in turn), as offsets into text.
func (r *compiledRule) firstSpan(text string) (start, end int, ok bool) {
	for off := 0; ; {
		piece, cut := text[off:], -1
		if r.within != 0 {
			if i := strings.IndexByte(piece, r.within); i >= 0 {
				piece, cut = piece[:i], i
			}
		}
		for _, m := range r.re.FindAllStringIndex(piece, -1) {
			if r.wordOnly && m[0] > 0 && isWordByte(piece[m[0]-1]) {
				continue
			}
			if r.refined(piece[m[0]:m[1]]) {
				return off + m[0], off + m[1], true
			}
		}
		if cut < 0 {
			return 0, 0, false
		}
		off += cut + 1
	}
}

// originalOffset maps an offset in prepare's text back to the payload,
// where the Kelvin sign (3 bytes) and the long s (2 bytes) stood for one
// byte each.
func originalOffset(orig string, off int) int {
	if !strings.Contains(orig, "\u212a") && !strings.Contains(orig, "\u017f") {
		return off
	}
	i := 0
	for j := 0; j < off && i < len(orig); j++ {
		switch {
		case strings.HasPrefix(orig[i:], "\u212a"):
			i += len("\u212a")
		case strings.HasPrefix(orig[i:], "\u017f"):
			i += len("\u017f")
		default:
			i++
		}
	}
	return i
}
