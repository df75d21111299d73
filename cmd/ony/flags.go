package main

// The flag helpers the subcommands share; agent.go has the agent-side commands' --url and --token.

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ony-ai/ony/client"
)

// newFlags is a subcommand's flag set with --config, complaining to stderr.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "", "configuration file (YAML)")
	return fs, cfg
}

// parseFlags parses args for a command that takes no positional arguments; either mistake is a usage
// error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// riskFlags is newFlags without --config, for commands that read no configuration (risk, ladder
// validate): accepting the flag would only mislead.
func riskFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseArgs is parseFlags for commands that take file arguments: flags may
// come before or after them, and everything after "--" is an argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &exitError{code: 2, msg: err.Error()}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// labelFlag collects repeated --label KEY=VALUE flags.
type labelFlag map[string]string

func (l labelFlag) String() string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

func (l labelFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := l[k]; dup {
		return fmt.Errorf("label %q given twice", k)
	}
	l[k] = v
	return nil
}

// optionFlag collects repeated --option ID:LABEL[:approves] flags.
type optionFlag []client.Option

func (o *optionFlag) String() string {
	if o == nil {
		return ""
	}
	parts := make([]string, len(*o))
	for i, op := range *o {
		parts[i] = op.ID + ":" + op.Label
		if op.Approves {
			parts[i] += ":approves"
		}
	}
	return strings.Join(parts, ",")
}

func (o *optionFlag) Set(s string) error {
	id, label, ok := strings.Cut(s, ":")
	id = strings.TrimSpace(id)
	if !ok || id == "" {
		return fmt.Errorf("want ID:LABEL[:approves], got %q", s)
	}
	approves := false
	if i := strings.LastIndexByte(label, ':'); i >= 0 {
		switch strings.ToLower(strings.TrimSpace(label[i+1:])) {
		case "approves", "true":
			approves, label = true, label[:i]
		case "false", "denies":
			label = label[:i]
		}
	}
	label = strings.TrimSpace(label)
	if label == "" {
		return fmt.Errorf("option %q has no label: want ID:LABEL[:approves]", id)
	}
	*o = append(*o, client.Option{ID: id, Label: label, Approves: approves})
	return nil
}
