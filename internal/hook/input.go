package hook

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Input is what Claude Code (and Codex, with the same field names) writes on the hook's stdin.
// Unknown fields are ignored: agents add fields over time.
type Input struct {
	SessionID      string `json:"session_id"`
	TranscriptPath string `json:"transcript_path"`
	Cwd            string `json:"cwd"`
	HookEventName  string `json:"hook_event_name"`
	ToolName       string `json:"tool_name"`
	// ToolInput is the tool's arguments, always a JSON object (`{}` when absent).
	ToolInput      json.RawMessage `json:"tool_input"`
	ToolUseID      string          `json:"tool_use_id"`
	PermissionMode string          `json:"permission_mode"`
}

// ParseInput decodes and checks the hook's stdin. Its errors never quote the input.
func ParseInput(data []byte) (*Input, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty hook input")
	}
	if data[0] != '{' {
		return nil, errors.New("malformed hook input (not a JSON object)")
	}
	var in Input
	if err := json.Unmarshal(data, &in); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, errors.New("malformed hook input (wrong type for " + te.Field + ")")
		}
		return nil, errors.New("malformed hook input (not valid JSON)")
	}
	if in.HookEventName != "" && in.HookEventName != "PreToolUse" {
		return nil, &OtherEventError{Event: eventName(in.HookEventName)}
	}
	if in.ToolName == "" {
		return nil, errors.New("malformed hook input (no tool_name)")
	}
	ti := bytes.TrimSpace(in.ToolInput)
	switch {
	case len(ti) == 0 || string(ti) == "null":
		in.ToolInput = json.RawMessage("{}")
	case ti[0] != '{':
		return nil, errors.New("malformed hook input (tool_input is not an object)")
	default:
		in.ToolInput = ti
	}
	return &in, nil
}

// OtherEventError is input for a hook event other than PreToolUse: the hook is configured under the
// wrong event in the agent's settings.
type OtherEventError struct {
	Event string // safe to print: a plain name, or "an unnamed event"
}

func (e *OtherEventError) Error() string {
	return "ony hook answers PreToolUse only, not " + e.Event + "; move it under PreToolUse in the agent's hook settings"
}

// eventName passes an event name on only when it looks like one, since it is echoed to the agent.
func eventName(s string) string {
	ok := len(s) > 0 && len(s) <= 40
	for i, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '_')) {
			ok = false
		}
	}
	if !ok {
		return "an unnamed event"
	}
	return s
}

// fields decodes the tool input's top level; Map and the policy read a few known fields from it.
func (in *Input) fields() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(in.ToolInput, &m) != nil || m == nil {
		m = map[string]json.RawMessage{}
	}
	return m
}

// str returns a string field of the tool input.
func str(m map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := m[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
