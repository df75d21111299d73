package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ony-ai/ony/app"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/risk"
)

const ladderUsage = `usage:
  ony ladder validate FILE|DIR...
      check escalation ladder files (see configs/ladders/ and docs/ladders.md); a directory is checked
      as Ony loads it, names unique across its files. Every mistake is listed with its line and
      column, and the exit status is 1 if there is any
  ony ladder explain --risk LEVEL --action ACTION [--label KEY=VALUE ...] [--timeout 1h]
                     [FILE|DIR... | --dir DIR | --config FILE]
      show which ladder a handoff would climb, why, and what it would do when if nobody decides.
      Ladders come from the arguments, else --dir, else the configuration's escalation.ladders_dir,
      else the built-in ladder`

func cmdLadder(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", ladderUsage)
	}
	switch args[0] {
	case "validate":
		return cmdLadderValidate(args[1:], stdout, stderr)
	case "explain":
		return cmdLadderExplain(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, ladderUsage)
		return nil
	}
	return usageErr("unknown ladder command %q\n%s", args[0], ladderUsage)
}

func cmdLadderValidate(args []string, stdout, stderr io.Writer) error {
	fs := riskFlags("ladder validate", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("usage: ony ladder validate FILE|DIR...")
	}
	problems := 0
	var bad []string
	for _, arg := range pos {
		ls, err := loadLadders([]string{arg})
		if n := reportLadderErrors(stderr, arg, err); n > 0 {
			problems += n
			bad = append(bad, arg)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s)\n", arg, ladderCount(ls))
	}
	if problems > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) in %s", problems, strings.Join(bad, ", "))}
	}
	return nil
}

// ladderCount says "2 ladders: a, b".
func ladderCount(ls []*escalation.Ladder) string {
	if len(ls) == 0 {
		return "no ladders: the built-in ladder applies"
	}
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	noun := "ladders"
	if len(ls) == 1 {
		noun = "ladder"
	}
	return fmt.Sprintf("%d %s: %s", len(ls), noun, strings.Join(names, ", "))
}

// loadLadders reads files and directories as one collection: each directory as LoadDir reads it,
// the files together as LoadFiles does. Names that clash between them are left to NewSet.
func loadLadders(paths []string) ([]*escalation.Ladder, error) {
	var files []string
	var out []*escalation.Ladder
	var errs []error
	for _, p := range paths {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.IsDir():
			ls, err := escalation.LoadDir(p, app.BuiltinKinds())
			out = append(out, ls...)
			errs = append(errs, err)
		default:
			files = append(files, p)
		}
	}
	if len(files) > 0 {
		ls, err := escalation.LoadFiles(files, app.BuiltinKinds())
		out = append(out, ls...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

// reportLadderErrors prints every mistake of err to stderr, one per line, and returns how many
// there were (0 when err is nil).
func reportLadderErrors(stderr io.Writer, what string, err error) int {
	if err == nil {
		return 0
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	n := 0
	for _, e := range list {
		var le *escalation.Errors
		if errors.As(e, &le) {
			for _, x := range le.List {
				fmt.Fprintln(stderr, x.Error())
			}
			n += len(le.List)
			continue
		}
		var pe *os.PathError
		if errors.As(e, &pe) {
			fmt.Fprintf(stderr, "%s: %v\n", pe.Path, pe.Err)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", what, e)
		}
		n++
	}
	return n
}

func cmdLadderExplain(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("ladder explain", stderr)
	dir := fs.String("dir", "", "a directory of ladder files (default: the configuration's escalation.ladders_dir)")
	level := fs.String("risk", "", "the handoff's risk: low, medium, high or critical (required)")
	action := fs.String("action", "", "the handoff's action, e.g. deploy.web (required)")
	labels := labelFlag{}
	fs.Var(labels, "label", "a label KEY=VALUE; repeat for more")
	timeout := fs.Duration("timeout", time.Hour, "the handoff's timeout")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	lv, err := risk.ParseLevel(*level)
	switch {
	case *level == "":
		return usageErr("--risk is required\n%s", ladderUsage)
	case err != nil:
		return usageErr("--risk %q: use low, medium, high or critical", *level)
	case strings.TrimSpace(*action) == "":
		return usageErr("--action is required\n%s", ladderUsage)
	case *timeout <= 0:
		return usageErr("--timeout must be positive, e.g. 1h")
	case len(pos) > 0 && *dir != "":
		return usageErr("give ladder files or --dir, not both")
	case len(pos) > 0 && *cfgPath != "":
		return usageErr("give ladder files or --config, not both")
	case *dir != "" && *cfgPath != "":
		return usageErr("give --dir or --config, not both")
	}

	var ls []*escalation.Ladder
	source := ""
	switch {
	case len(pos) > 0:
		source = strings.Join(pos, ", ")
		ls, err = loadLadders(pos)
	case *dir != "":
		source = *dir
		ls, err = loadLadders([]string{*dir})
	default:
		cfg, cerr := loadConfig(*cfgPath)
		if cerr != nil {
			return cerr
		}
		if d := cfg.Escalation.LaddersDir; d != "" {
			source = "escalation.ladders_dir " + d
			ls, err = loadLadders([]string{d})
		}
	}
	if n := reportLadderErrors(stderr, source, err); n > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d problem(s) in the ladders", n)}
	}
	set, err := escalation.NewSet(ls)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}

	riskName := lv.String()
	fmt.Fprintf(stdout, "%-9s risk %s, action %s", "handoff", riskName, *action)
	if len(labels) > 0 {
		fmt.Fprintf(stdout, ", labels %s", labels)
	}
	fmt.Fprintf(stdout, ", timeout %s\n", escalation.FormatDuration(*timeout))
	if source == "" {
		fmt.Fprintf(stdout, "%-9s none configured: the built-in ladder applies\n", "ladders")
	} else {
		fmt.Fprintf(stdout, "%-9s %s (from %s)\n", "ladders", ladderNames(set.Ladders()), source)
	}

	chosen := set.Select(riskName, *action, labels)
	for _, l := range set.Ladders() {
		if l == chosen {
			break
		}
		if l.Default {
			continue
		}
		_, why := l.Why(riskName, *action, labels)
		fmt.Fprintf(stdout, "%-9s %s: %s\n", "skipped", l.Name, strings.Join(why, "; "))
	}
	var why string
	switch {
	case chosen.Origin == "builtin":
		why = "no ladder matches and none is default, so the built-in one applies"
	case chosen.Default:
		why = "the default ladder, since no other matches"
	default:
		_, reasons := chosen.Why(riskName, *action, labels)
		why = strings.Join(reasons, "; ")
	}
	fmt.Fprintf(stdout, "%-9s %s: %s\n\n", "selected", chosen.Name, why)
	escalation.FormatTimeline(stdout, chosen, escalation.Timeline(chosen, *timeout, app.BuiltinKinds()))
	return nil
}

func ladderNames(ls []*escalation.Ladder) string {
	if len(ls) == 0 {
		return "none"
	}
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}
