package escalation

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
)

// LoadPaths reads files and directories as one collection: each directory as LoadDir reads it, the
// files together as LoadFiles does. Names that clash between them are left to NewSet. The error joins
// every failure (*Errors from parsing, *os.PathError for a path that cannot be read).
func LoadPaths(paths []string, kinds *channel.Kinds) ([]*Ladder, error) {
	var files []string
	var out []*Ladder
	var errs []error
	for _, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.IsDir():
			ls, err := LoadDir(p, kinds)
			out = append(out, ls...)
			errs = append(errs, err)
		default:
			files = append(files, p)
		}
	}
	if len(files) > 0 {
		ls, err := LoadFiles(files, kinds)
		out = append(out, ls...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// Query is a handoff as ladder selection sees it.
type Query struct {
	Risk    string // low, medium, high or critical
	Action  string
	Labels  map[string]string
	Timeout time.Duration
}

// FormatExplanation writes which ladder of set a handoff like q would climb, why each ladder ordered
// before it was skipped, and then the chosen ladder's timeline (FormatTimeline): what `ony ladder
// explain` prints. source says where set's ladders came from; empty means none were configured.
func FormatExplanation(w io.Writer, set *Set, q Query, source string, kinds *channel.Kinds) {
	fmt.Fprintf(w, "%-9s risk %s, action %s", "handoff", q.Risk, q.Action)
	if len(q.Labels) > 0 {
		pairs := make([]string, 0, len(q.Labels))
		for _, k := range sortedKeys(q.Labels) {
			pairs = append(pairs, k+"="+q.Labels[k])
		}
		fmt.Fprintf(w, ", labels %s", strings.Join(pairs, ","))
	}
	fmt.Fprintf(w, ", timeout %s\n", FormatDuration(q.Timeout))
	if source == "" {
		fmt.Fprintf(w, "%-9s none configured: the built-in ladder applies\n", "ladders")
	} else {
		fmt.Fprintf(w, "%-9s %s (from %s)\n", "ladders", ladderNames(set.Ladders()), source)
	}

	chosen := set.Select(q.Risk, q.Action, q.Labels)
	for _, l := range set.Ladders() {
		if l == chosen {
			break
		}
		if l.Default {
			continue
		}
		_, why := l.Why(q.Risk, q.Action, q.Labels)
		fmt.Fprintf(w, "%-9s %s: %s\n", "skipped", l.Name, strings.Join(why, "; "))
	}
	var why string
	switch {
	case chosen.Origin == "builtin":
		why = "no ladder matches and none is default, so the built-in one applies"
	case chosen.Default:
		why = "the default ladder, since no other matches"
	default:
		_, reasons := chosen.Why(q.Risk, q.Action, q.Labels)
		why = strings.Join(reasons, "; ")
	}
	fmt.Fprintf(w, "%-9s %s: %s\n\n", "selected", chosen.Name, why)
	FormatTimeline(w, chosen, Timeline(chosen, q.Timeout, kinds))
}

func ladderNames(ls []*Ladder) string {
	if len(ls) == 0 {
		return "none"
	}
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}
