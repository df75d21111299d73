package risk

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

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
