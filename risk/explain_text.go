package risk

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// TextOptions are how FormatExplanation lays an explanation out.
type TextOptions struct {
	// Policy names the policy file the engine was built from; empty means the built-in rules.
	Policy string
	// All lists every rule, not only those that fired, with what became of each.
	All bool
}

// matchedTextRunes is how much of a rule's matched text the table shows.
const matchedTextRunes = 60

// FormatExplanation writes x as `ony risk explain` shows it to a person: the base level, the rules
// that fired (every rule with o.All) with the text each matched, quoted and cut short, the floors and
// the final level. payload is the text x was computed from: matches are offsets into it (a match
// outside it shows as "-").
func FormatExplanation(w io.Writer, x Explanation, payload string, o TextOptions) error {
	policyPath, all := o.Policy, o.All
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kind := x.Kind
	if kind == "" {
		kind = "(not stated)"
	}
	fmt.Fprintf(tw, "action\t%s\n", x.Action)
	fmt.Fprintf(tw, "kind\t%s\n", kind)
	if policyPath == "" {
		fmt.Fprintf(tw, "policy\t(none: built-in rules)\n")
	} else {
		fmt.Fprintf(tw, "policy\t%s\n", policyPath)
	}
	base := "no entry for this action"
	if x.Base.Entry != "" {
		base = "action " + x.Base.Entry
	}
	if x.Base.Reason != "" {
		base += ", reason " + string(x.Base.Reason)
	}
	fmt.Fprintf(tw, "base\t%s\t(%s)\n", x.Base.Level, base)
	if len(x.Disabled) > 0 {
		fmt.Fprintf(tw, "disabled\t%s\n", strings.Join(x.Disabled, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	var shown []RuleTrace
	for _, r := range x.Rules {
		if r.Fired || all {
			shown = append(shown, r)
		}
	}
	if all {
		fmt.Fprintf(w, "\nrules (%d)\n", len(shown))
	} else {
		fmt.Fprintf(w, "\nfired rules (%d of %d)\n", len(shown), len(x.Rules))
	}
	if len(shown) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if all {
			fmt.Fprintln(tw, "  RULE\tORIGIN\tLEVEL\tREASON\tOUTCOME\tMATCH")
		} else {
			fmt.Fprintln(tw, "  RULE\tLEVEL\tREASON\tMATCH")
		}
		for _, r := range shown {
			level := r.Level.String()
			if r.Level != r.DefaultLevel {
				level += " (was " + r.DefaultLevel.String() + ")"
			}
			match := "-"
			if m := r.Match; m != nil && 0 <= m.Start && m.Start <= m.End && m.End <= len(payload) {
				match = quoteTruncated(payload[m.Start:m.End], matchedTextRunes)
			}
			if all {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Origin, level, r.Reason, outcome(r), match)
			} else {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.ID, level, r.Reason, match)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(x.Floors) > 0 {
		fmt.Fprintf(w, "\nfloors\n")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range x.Floors {
			state := "not applied"
			if f.Applied {
				state = "applied"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.ID, f.Level, state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	a := x.Assessment
	reasons := make([]string, len(a.Reasons))
	for i, r := range a.Reasons {
		reasons[i] = string(r)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "final\t%s\n", a.Level)
	fmt.Fprintf(tw, "reasons\t%s\n", orNone(reasons))
	fmt.Fprintf(tw, "rules\t%s\n", orNone(a.Rules))
	return tw.Flush()
}

// outcome says in a few words what became of a rule, for --all.
func outcome(r RuleTrace) string {
	switch {
	case r.Fired:
		return "fired"
	case !r.ActionMatch:
		return "skipped: action"
	case !r.KindMatch:
		return "skipped: kind"
	case !r.LabelMatch:
		return "skipped: labels"
	case r.Keywords == KeywordsAbsent:
		return "no keyword"
	}
	return "no match"
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// quoteTruncated quotes s, cut to n characters, so that a match spanning
// lines or holding control characters stays on one line of the table.
func quoteTruncated(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		i := 0
		for range n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		return strconv.Quote(s[:i]) + "…"
	}
	return strconv.Quote(s)
}
