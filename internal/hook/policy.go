package hook

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// DefaultAllowTools are the tools allowed without asking anyone when no policy file is given (and
// with `default_allow: true` in one): they read the workspace or only touch the agent's own state.
// WebSearch and WebFetch are not among them: they send text the model chose off the machine, which
// is how a prompt injection exfiltrates data.
var DefaultAllowTools = []string{"Read", "Glob", "Grep", "LS", "NotebookRead", "TodoWrite", "BashOutput"}

// Policy allows harmless tool calls locally, so they never page anyone. A nil Policy allows nothing.
//
// Bash rules never allow a command with a character that chains, pipes, redirects, substitutes or
// backgrounds (; & | > < ` $( and newlines), whatever the rule says: `ls; rm -rf /` is not `ls`.
type Policy struct {
	tools    []string
	prefixes [][]string
	regexes  []*regexp.Regexp
	// source names the rules' origin in reasons: "default" or the policy file.
	source string
}

// PolicyFile is the YAML policy file's shape.
//
//	default_allow: true          # also allow DefaultAllowTools
//	allow:
//	  tools: [WebSearch, "mcp__docs__*"]      # tool names; * matches any run of characters
//	  bash_prefixes: [ls, cat, git status]    # a command whose first words are these
//	  bash_regexes: ['git log( -n [0-9]+)?']  # a command this matches, whole
type PolicyFile struct {
	DefaultAllow bool `yaml:"default_allow"`
	Allow        struct {
		Tools        []string `yaml:"tools"`
		BashPrefixes []string `yaml:"bash_prefixes"`
		BashRegexes  []string `yaml:"bash_regexes"`
	} `yaml:"allow"`
}

// DefaultPolicy allows DefaultAllowTools.
func DefaultPolicy() *Policy {
	return &Policy{tools: append([]string(nil), DefaultAllowTools...), source: "the default allow-list"}
}

// LoadPolicy reads a policy file; withDefaults adds DefaultAllowTools when the file asks for them.
func LoadPolicy(file string, withDefaults bool) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy file: %w", err)
	}
	p, err := ParsePolicy(data, withDefaults)
	if err != nil {
		return nil, fmt.Errorf("policy file %s: %w", file, err)
	}
	p.source = "policy " + path.Base(file)
	return p, nil
}

// ParsePolicy parses a policy file's contents. Unknown keys are errors: a misspelt rule must not
// silently allow less, or more, than its author meant.
func ParsePolicy(data []byte, withDefaults bool) (*Policy, error) {
	var f PolicyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	p := &Policy{source: "policy"}
	if f.DefaultAllow && withDefaults {
		p.tools = append(p.tools, DefaultAllowTools...)
	}
	for _, t := range f.Allow.Tools {
		t = strings.TrimSpace(t)
		if t == "" {
			return nil, errors.New("allow.tools: empty tool name")
		}
		if _, err := path.Match(t, ""); err != nil {
			return nil, fmt.Errorf("allow.tools: bad pattern %q", t)
		}
		for _, risky := range []string{"Bash", "bash"} {
			if ok, _ := path.Match(t, risky); ok {
				return nil, fmt.Errorf("allow.tools: %q would allow every shell command; list commands in allow.bash_prefixes or allow.bash_regexes instead", t)
			}
		}
		p.tools = append(p.tools, t)
	}
	for _, s := range f.Allow.BashPrefixes {
		words := shellWords(s)
		if len(words) == 0 {
			return nil, errors.New("allow.bash_prefixes: empty prefix")
		}
		if chains(s) {
			return nil, fmt.Errorf("allow.bash_prefixes: %q has shell metacharacters; such commands are never auto-allowed", s)
		}
		p.prefixes = append(p.prefixes, words)
	}
	for _, s := range f.Allow.BashRegexes {
		if strings.TrimSpace(s) == "" {
			return nil, errors.New("allow.bash_regexes: empty expression")
		}
		re, err := regexp.Compile(`^(?:` + s + `)$`)
		if err != nil {
			return nil, fmt.Errorf("allow.bash_regexes: %q: %v", s, err)
		}
		p.regexes = append(p.regexes, re)
	}
	return p, nil
}

// Allows reports whether the call may run without asking anyone, and which rule said so.
func (p *Policy) Allows(in *Input) (bool, string) {
	if p == nil || in == nil {
		return false, ""
	}
	for _, t := range p.tools {
		if ok, _ := path.Match(t, in.ToolName); ok {
			return true, fmt.Sprintf("allowed by %s: tool %s", p.source, in.ToolName)
		}
	}
	if in.ToolName != "Bash" || (len(p.prefixes) == 0 && len(p.regexes) == 0) {
		return false, ""
	}
	cmd, ok := str(in.fields(), "command")
	if !ok {
		return false, ""
	}
	cmd = strings.TrimSpace(cmd)
	if cmd == "" || chains(cmd) || !printable(cmd) {
		return false, ""
	}
	words := shellWords(cmd)
	for _, pre := range p.prefixes {
		if hasPrefixWords(words, pre) {
			return true, fmt.Sprintf("allowed by %s: read-only command %q", p.source, strings.Join(pre, " "))
		}
	}
	for _, re := range p.regexes {
		if re.MatchString(cmd) {
			return true, fmt.Sprintf("allowed by %s: command matches %s", p.source, re.String())
		}
	}
	return false, ""
}

// chains reports whether a command has a shell metacharacter that runs, chains, pipes, redirects,
// substitutes or backgrounds anything: ; & | > < ` $( and line breaks. Quoted or not: a rule would
// have to parse shell quoting to tell, and a mistake there runs a command nobody approved.
func chains(cmd string) bool {
	return strings.ContainsAny(cmd, ";&|<>`\n\r") || strings.Contains(cmd, "$(")
}

// printable rejects control characters and unusual spaces (a no-break space is not a word break to
// the shell, so "ls\u00a0x" is not the command ls).
func printable(cmd string) bool {
	for _, r := range cmd {
		if r == ' ' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// shellWords splits on spaces and tabs, the shell's default word breaks.
func shellWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

func hasPrefixWords(words, prefix []string) bool {
	if len(words) < len(prefix) {
		return false
	}
	for i, w := range prefix {
		if words[i] != w {
			return false
		}
	}
	return true
}
