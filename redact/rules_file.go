package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// An organization's own detectors live in a YAML file (redact.rules_file; `ony redact --rules FILE`
// tries them):
//
//	rules:
//	  - name: acme_api_key          # the kind becomes custom:acme_api_key
//	    pattern: 'acme_[a-z0-9]{32}'
//	    keywords: [acme_]           # optional prefilter
//	    group: 0                    # optional capture group holding the secret
type rulesFile struct {
	Rules []struct {
		Name     string   `yaml:"name"`
		Pattern  string   `yaml:"pattern"`
		Keywords []string `yaml:"keywords"`
		Group    int      `yaml:"group"`
	} `yaml:"rules"`
}

// ParseRules reads custom rules from YAML. Unknown keys are errors; New then checks each rule (and
// reports every bad one).
func ParseRules(data []byte, filename string) ([]Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f rulesFile
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file: no rules
		}
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	out := make([]Rule, len(f.Rules))
	for i, r := range f.Rules {
		out[i] = Rule{Name: r.Name, Pattern: r.Pattern, Keywords: r.Keywords, Group: r.Group}
	}
	if _, err := New(Options{Custom: out}); err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	return out, nil
}
