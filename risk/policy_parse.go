package risk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/internal/yamlnode"
)

// maxPolicyNodes bounds the YAML nodes the parser visits, following aliases,
// so that a small file of nested aliases cannot make it work for ever.
const maxPolicyNodes = 200_000

// PolicyErrors is every mistake ParsePolicy found, in file order, so that they can all be fixed in
// one pass. Path names the offending value, e.g. rules.add[0].pattern or floors.actions["db.migrate"].
type PolicyErrors = yamlnode.Diagnostics

// ParsePolicy reads a policy file (see the format in policy.go). filename only
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
