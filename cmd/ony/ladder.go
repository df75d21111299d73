package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/internal/app"
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

// loadLadders reads ladder files and directories as one collection, with the kinds Ony is built with.
func loadLadders(paths []string) ([]*escalation.Ladder, error) {
	return escalation.LoadPaths(paths, app.BuiltinKinds())
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

	q := escalation.Query{Risk: lv.String(), Action: *action, Labels: labels, Timeout: *timeout}
	escalation.FormatExplanation(stdout, set, q, source, app.BuiltinKinds())
	return nil
}
