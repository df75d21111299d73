package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ony-ai/ony/risk"
)

const riskUsage = `usage:
  ony risk explain --action ACTION [--kind KIND] [--label KEY=VALUE ...] [--policy FILE] [--all] [--json] [PAYLOAD_FILE | -]
      show how Ony scores a handoff: the action's base level, every rule that fired (with the text it
      matched), the policy's floors and the final level; - reads the payload from stdin
  ony risk check-policy FILE
      check a risk policy file (see configs/risk-policy.example.yaml); every mistake is listed with its
      line and column, and the exit status is 2 if there is any`

// maxExplainPayload bounds a payload read by ony risk explain. The server has
// its own, configurable limit; this one only keeps a wrong path such as
// /dev/zero from exhausting memory.
const maxExplainPayload = 64 << 20

func cmdRisk(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", riskUsage)
	}
	switch args[0] {
	case "explain":
		return cmdRiskExplain(args[1:], stdin, stdout, stderr)
	case "check-policy":
		return cmdRiskCheckPolicy(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, riskUsage)
		return nil
	}
	return usageErr("unknown risk command %q\n%s", args[0], riskUsage)
}

func cmdRiskExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := riskFlags("risk explain", stderr)
	action := fs.String("action", "", "the handoff's action, e.g. shell.exec (required)")
	kind := fs.String("kind", "", "payload kind: command, diff, log or text (default: not stated)")
	labels := labelFlag{}
	fs.Var(labels, "label", "a label KEY=VALUE; repeat for more")
	policyPath := fs.String("policy", "", "a risk policy file (default: the built-in rules only)")
	all := fs.Bool("all", false, "list every rule, not only those that fired")
	asJSON := fs.Bool("json", false, "print the explanation as JSON (offsets, never payload text)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*action) == "" {
		return usageErr("--action is required\n%s", riskUsage)
	}
	if len(pos) > 1 {
		return usageErr("unexpected argument %q: give at most one PAYLOAD_FILE", pos[1])
	}

	engine := risk.Default()
	if *policyPath != "" {
		p, err := loadPolicy(*policyPath, stderr)
		if err != nil {
			return err
		}
		if engine, err = p.Engine(); err != nil {
			return err
		}
	}
	in := risk.Input{Action: *action, PayloadKind: *kind, Labels: map[string]string(labels)}
	if len(pos) == 1 {
		b, err := readPayload(pos[0], stdin)
		if err != nil {
			return err
		}
		in.Payload = string(b)
	}

	x := engine.Explain(in)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(x)
	}
	return risk.FormatExplanation(stdout, x, in.Payload, risk.TextOptions{Policy: *policyPath, All: *all})
}

func readPayload(path string, stdin io.Reader) ([]byte, error) {
	r, name := stdin, "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	b, err := io.ReadAll(io.LimitReader(r, maxExplainPayload+1))
	if err != nil {
		return nil, fmt.Errorf("payload: read %s: %w", name, err)
	}
	if len(b) > maxExplainPayload {
		return nil, fmt.Errorf("payload: %s is larger than %d bytes", name, maxExplainPayload)
	}
	return b, nil
}

// loadPolicy reads and parses a policy file. Mistakes in it are printed to
// stderr one per line, "file:line:col: path: message", and come back as an
// exit status of 2.
func loadPolicy(path string, stderr io.Writer) (*risk.Policy, error) {
	data, err := readPolicyFile(path)
	if err != nil {
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: %v", path, err)}
	}
	p, err := risk.ParsePolicy(data, path)
	var pe *risk.PolicyErrors
	if errors.As(err, &pe) {
		for _, e := range pe.List {
			fmt.Fprintln(stderr, e.Error())
		}
		return nil, &exitError{code: 2, msg: fmt.Sprintf("%s: %d problem(s) in the risk policy", path, len(pe.List))}
	}
	return p, err
}

func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the path
		}
		return nil, fmt.Errorf("cannot read the risk policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, risk.MaxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the risk policy: %w", err)
	}
	if len(b) > risk.MaxPolicyBytes {
		return nil, fmt.Errorf("the risk policy is larger than %d bytes", risk.MaxPolicyBytes)
	}
	return b, nil
}

func cmdRiskCheckPolicy(args []string, stdout, stderr io.Writer) error {
	fs := riskFlags("risk check-policy", stderr)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("usage: ony risk check-policy FILE")
	}
	p, err := loadPolicy(pos[0], stderr)
	if err != nil {
		return err
	}
	if _, err := p.Engine(); err != nil {
		return &exitError{code: 2, msg: fmt.Sprintf("%s: %v", pos[0], err)}
	}
	fmt.Fprintf(stdout, "%s: ok (%d rule(s) disabled, %d level(s) changed, %d rule(s) added, %d floor(s))\n",
		pos[0], len(p.Disable), len(p.Levels), len(p.Add), len(p.ActionFloors)+len(p.LabelFloors))
	return nil
}
