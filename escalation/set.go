package escalation

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// Set is the ladders in force, in matching order. It is never changed after NewSet, so one Set may
// be shared by every request; its ladders must not be modified either.
type Set struct {
	ladders []*Ladder
	byName  map[string]*Ladder
	// chat are the channels the built-in ladder adds to the console (the configured chat channels).
	chat []string
}

// WithBuiltinChannels returns s whose built-in ladder also reaches people on channels (Slack and
// Telegram when they are configured): turning a chat channel on is then enough for Ony to use it.
func (s *Set) WithBuiltinChannels(channels ...string) *Set {
	out := *s
	out.chat = slices.Clone(channels)
	return &out
}

// Builtin is the ladder handoffs get when no ladder of s matches and none is default.
func (s *Set) Builtin() *Ladder { return Builtin(s.chat...) }

// NewSet orders ladders by (Order, Name), with the default ladder last whatever its Order: it is the
// fallback, so trying it earlier would hide every ladder after it. Two ladders with one name, or more
// than one default, are an error. An empty set is fine: Select falls back to Builtin.
func NewSet(ls []*Ladder) (*Set, error) {
	s := &Set{ladders: make([]*Ladder, 0, len(ls)), byName: make(map[string]*Ladder, len(ls))}
	var problems []string
	var def *Ladder
	for _, l := range ls {
		switch {
		case l == nil:
			problems = append(problems, "nil ladder")
			continue
		case s.byName[l.Name] != nil:
			problems = append(problems, fmt.Sprintf("ladder %q is defined twice (%s and %s)", l.Name, s.byName[l.Name].Origin, l.Origin))
			continue
		case l.Default && def != nil:
			problems = append(problems, fmt.Sprintf("ladders %q (%s) and %q (%s) are both default; only one may be",
				def.Name, def.Origin, l.Name, l.Origin))
		case l.Default:
			def = l
		}
		s.byName[l.Name] = l
		s.ladders = append(s.ladders, l)
	}
	if len(problems) > 0 {
		return nil, errors.New("escalation: " + strings.Join(problems, "; "))
	}
	sort.SliceStable(s.ladders, func(i, j int) bool {
		a, b := s.ladders[i], s.ladders[j]
		if a.Default != b.Default {
			return b.Default
		}
		if a.Order != b.Order {
			return a.Order < b.Order
		}
		return a.Name < b.Name
	})
	return s, nil
}

// With returns a new Set in which overrides replace the ladders of the same name and add the others:
// an organization's ladders, put through the API, over the instance's files. s is left as it was.
func (s *Set) With(overrides []*Ladder) (*Set, error) {
	seen := map[string]bool{}
	for _, o := range overrides {
		if o == nil {
			return nil, errors.New("escalation: nil ladder")
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("escalation: ladder %q is given twice", o.Name)
		}
		seen[o.Name] = true
	}
	// An organization's own default replaces the instance's, whatever its name: an override cannot
	// leave the organization with two defaults.
	ownDefault := slices.ContainsFunc(overrides, func(l *Ladder) bool { return l.Default })
	all := make([]*Ladder, 0, len(s.ladders)+len(overrides))
	for _, l := range s.ladders {
		if !seen[l.Name] && !(ownDefault && l.Default) {
			all = append(all, l)
		}
	}
	out, err := NewSet(append(all, overrides...))
	if err != nil {
		return nil, err
	}
	out.chat = s.chat
	return out, nil
}

// Ladders returns the ladders in matching order (the default last).
func (s *Set) Ladders() []*Ladder {
	return slices.Clone(s.ladders)
}

// Get returns the ladder named name, or nil. Builtin is not in any set.
func (s *Set) Get(name string) *Ladder {
	return s.byName[name]
}

// Select returns the ladder for a handoff: the first non-default ladder that matches, else the
// default one, else Builtin. It never returns nil.
func (s *Set) Select(risk, action string, labels map[string]string) *Ladder {
	var def *Ladder
	for _, l := range s.ladders {
		if l.Default {
			def = l
			continue
		}
		if l.Matches(risk, action, labels) {
			return l
		}
	}
	if def != nil {
		return def
	}
	return s.Builtin()
}

// Matches reports whether every part of l.Match that is set matches the handoff. Risk and action
// compare without regard to case or surrounding space; label keys and values exactly.
func (l *Ladder) Matches(risk, action string, labels map[string]string) bool {
	m := l.Match
	return (len(m.Risk) == 0 || riskIn(m.Risk, risk)) &&
		(len(m.Actions) == 0 || actionGlob(m.Actions, action) != "") &&
		labelsMismatch(m.Labels, labels) == ""
}

// Why explains Matches part by part, in words for `ony ladder explain`: what matched when ok, or
// the first part that did not.
func (l *Ladder) Why(risk, action string, labels map[string]string) (ok bool, why []string) {
	m := l.Match
	risk, action = norm(risk), norm(action)
	if len(m.Risk) > 0 {
		wanted := strings.Join(m.Risk, " or ")
		if !riskIn(m.Risk, risk) {
			return false, []string{fmt.Sprintf("risk is %s (wanted %s)", orDash(risk), wanted)}
		}
		why = append(why, fmt.Sprintf("risk is %s (wanted %s)", risk, wanted))
	}
	if len(m.Actions) > 0 {
		g := actionGlob(m.Actions, action)
		if g == "" {
			return false, []string{fmt.Sprintf("action %s matches none of %s", orDash(action), strings.Join(m.Actions, ", "))}
		}
		why = append(why, fmt.Sprintf("action %s matches %s", action, g))
	}
	if msg := labelsMismatch(m.Labels, labels); msg != "" {
		return false, []string{msg}
	}
	for _, k := range sortedKeys(m.Labels) {
		why = append(why, fmt.Sprintf("label %s=%s matches %s", k, labels[k], m.Labels[k]))
	}
	if len(why) == 0 {
		why = []string{"its match is empty, so it matches every handoff"}
	}
	return true, why
}

func norm(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func orDash(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func riskIn(levels []string, risk string) bool {
	return slices.Contains(levels, norm(risk))
}

// actionGlob returns the first glob that matches action, or "".
func actionGlob(globs []string, action string) string {
	action = norm(action)
	for _, g := range globs {
		if ok, _ := path.Match(g, action); ok {
			return g
		}
	}
	return ""
}

// labelsMismatch says which wanted label is missing or does not match, or "" when all do.
func labelsMismatch(want, labels map[string]string) string {
	for _, k := range sortedKeys(want) {
		v, present := labels[k]
		if !present {
			return fmt.Sprintf("label %s is missing (wanted %s)", k, want[k])
		}
		if ok, _ := path.Match(want[k], v); !ok {
			return fmt.Sprintf("label %s=%s does not match %s", k, v, want[k])
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
