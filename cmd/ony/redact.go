package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ony-ai/ony/redact"
)

const redactUsage = `usage: ony redact [FILE] [--json] [--rules RULES_FILE]

Prints FILE (or standard input, also with FILE "-") with every secret it finds replaced by
[REDACTED:<kind>:<fingerprint>]. With --json it prints only what it found, never the secrets:
  {"findings":[{"kind":"github_token","start":27,"end":67,"fingerprint":"1f0c…"}]}
start and end are byte offsets in the input. Input is limited to 16 MiB.

The CLI runs without a server, so its fingerprints use a fixed key built into Ony, not your
organization's key: they are stable from run to run and let you match findings, but they differ
from the server's, and anyone can test a guessed secret against them. Treat them as public.
(--config is accepted for symmetry with the other commands and not read.)
`

// maxRedactInput is the most `ony redact` reads.
const maxRedactInput = 16 << 20

// cliFingerprintKey is the fixed, public fingerprint key of `ony redact` (see redactUsage).
var cliFingerprintKey = func() []byte {
	k := sha256.Sum256([]byte("ony redact CLI fingerprint key v1"))
	return k[:]
}()

func cmdRedact(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, _ := newFlags("redact", stderr)
	asJSON := fs.Bool("json", false, "print the findings as JSON instead of the redacted text")
	rulesFile := fs.String("rules", "", "YAML file of your own detectors to add (as redact.rules_file)")
	fs.Usage = func() { fmt.Fprint(stderr, redactUsage) }
	// FILE may come before or after the flags.
	file := ""
	var flagArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--": // the rest is FILE, even if it starts with '-'
			rest := args[i+1:]
			if len(rest) > 1 || len(rest) == 1 && file != "" {
				return usageErr("unexpected argument %q\n%s", rest[len(rest)-1], redactUsage)
			}
			if len(rest) == 1 {
				file = rest[0]
			}
			i = len(args)
		case a == "-" || !strings.HasPrefix(a, "-"):
			if file != "" {
				return usageErr("unexpected argument %q\n%s", a, redactUsage)
			}
			file = a
		default:
			flagArgs = append(flagArgs, a)
			// --config and --rules take a value when not written --flag=FILE.
			if name := strings.TrimLeft(a, "-"); (name == "config" || name == "rules") && i+1 < len(args) {
				flagArgs = append(flagArgs, args[i+1])
				i++
			}
		}
	}
	if err := parseFlags(fs, flagArgs); err != nil {
		return err
	}

	in := stdin
	if file != "" && file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, maxRedactInput+1))
	if err != nil {
		return err
	}
	if len(data) > maxRedactInput {
		return &exitError{code: 1, msg: fmt.Sprintf("input is larger than %d MiB; nothing printed", maxRedactInput>>20)}
	}

	r := redact.Default()
	if *rulesFile != "" {
		raw, err := os.ReadFile(*rulesFile)
		if err != nil {
			return err
		}
		rules, err := redact.ParseRules(raw, *rulesFile)
		if err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
		if r, err = redact.New(redact.Options{Custom: rules}); err != nil {
			return &exitError{code: 2, msg: err.Error()}
		}
	}
	out, findings := r.Redact(cliFingerprintKey, string(data))
	if *asJSON {
		if findings == nil {
			findings = []redact.Finding{}
		}
		return json.NewEncoder(stdout).Encode(struct {
			Findings []redact.Finding `json:"findings"`
		}{findings})
	}
	_, err = io.WriteString(stdout, out)
	return err
}
