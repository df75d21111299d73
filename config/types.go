package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// mask is what every printed form of a non-empty Secret shows.
const mask = "******"

// Secret holds a credential. Every printing path (fmt, YAML, JSON, slog) shows
// a mask so a secret cannot leak by accident; call Value for the real thing.
type Secret string

// Value returns the secret itself; use it only where the credential is consumed.
func (s Secret) Value() string { return string(s) }

// String masks the value but still tells "set" apart from "empty".
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return mask
}

// Format covers every fmt verb, including %#v and %x, which would otherwise
// print the underlying string.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	fmt.Fprint(f, s.String())
}

// MarshalYAML keeps secrets out of Redacted and any other YAML dump.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON keeps secrets out of JSON dumps such as debug endpoints.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// LogValue keeps secrets out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Duration is a time.Duration written in Go syntax ("90s", "1h30m") in YAML and
// the environment, rather than as a bare number of nanoseconds.
type Duration time.Duration

// D converts to time.Duration for use with the standard library.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText makes YAML and JSON output use the same syntax the input accepts.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText accepts Go duration syntax, which is what the file and env use.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %s (use Go syntax such as 90s or 1h30m)", quoteShort(string(b)))
	}
	*d = Duration(v)
	return nil
}

// quoteShort quotes a (non-secret) input for an error message, cut short so a
// pasted blob cannot flood the output.
func quoteShort(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}
