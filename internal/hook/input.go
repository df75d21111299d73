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
		return nil, errors.New("ony hook answers PreToolUse only; configure it under PreToolUse")
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
