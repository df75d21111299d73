package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/hook"
)

// approve_tool_use implements Claude Code's permission prompt tool (claude --permission-prompt-tool
// mcp__ony__approve_tool_use). Claude Code calls it with the tool call it wants to make and reads the
// first text block of the result as JSON:
//
//	{"behavior":"allow","updatedInput":{...the tool's input...}}
//	{"behavior":"deny","message":"why"}
//
// It fails closed: anything but a person's approval in Ony — a denial, expiry, an error, Ony being
// unreachable, the wait running out — is a deny with a readable message.

// approveToolUseSchema is written by hand: it admits properties Claude Code may add later (an unknown
// property must not turn a prompt into an error), and the handler reads the raw arguments so that
// updatedInput is the tool's input byte for byte.
var approveToolUseSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "tool_name": {"type": "string", "description": "the tool Claude Code wants to use, e.g. Bash, Write, Edit, mcp__github__create_issue"},
    "input": {"type": "object", "description": "the tool's input"},
    "tool_use_id": {"type": "string", "description": "the tool call's id; a repeated prompt for the same id joins the same request"}
  },
  "required": ["tool_name", "input"]
}`)

// toolUseSchema is approveToolUseSchema parsed: the handler checks the arguments against its required
// properties and their types itself, since the SDK validates only tools registered with a typed input.
// It is parsed on first use because every command runs this package's initializers; only `ony mcp`
// needs it.
var toolUseSchema = sync.OnceValue(func() *jsonschema.Schema {
	var sc jsonschema.Schema
	if err := json.Unmarshal(approveToolUseSchema, &sc); err != nil {
		panic(err)
	}
	return &sc
})

// checkArgs reports the first way args break sc's required list or its properties' types. It names
// properties and types only, never a value: the arguments carry commands and file contents.
func checkArgs(sc *jsonschema.Schema, args json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil || m == nil {
		return errors.New("the arguments are not a JSON object")
	}
	var missing []string
	for _, name := range sc.Required {
		if v, ok := m[name]; !ok || jsonType(v) == "null" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required %s", strings.Join(missing, ", "))
	}
	for _, name := range slices.Sorted(maps.Keys(sc.Properties)) {
		want := sc.Properties[name].Type
		v, ok := m[name]
		if !ok || want == "" {
			continue
		}
		got := jsonType(v)
		if got == "number" && want == "integer" && !bytes.ContainsAny(v, ".eE") {
			got = "integer"
		}
		if got != want {
			return fmt.Errorf("%s must be %s %s, not %s", name, article(want), want, got)
		}
	}
	return nil
}

// jsonType is the JSON Schema type of a JSON value; every number is "number".
func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "null"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func article(typ string) string {
	if strings.ContainsRune("aeiou", rune(typ[0])) {
		return "an"
	}
	return "a"
}

// ToolUse is approve_tool_use's input.
type ToolUse struct {
	ToolName  string          `json:"tool_name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
}

// PermissionDecision is what approve_tool_use answers, as JSON text.
type PermissionDecision struct {
	Behavior     string          `json:"behavior"` // allow | deny
	UpdatedInput json.RawMessage `json:"updatedInput,omitempty"`
	Message      string          `json:"message,omitempty"`
}

func (s *server) approveToolUse(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args json.RawMessage
	if req != nil && req.Params != nil {
		args = req.Params.Arguments
	}
	// Arguments the schema refuses are a tool error, before anything is created: a call without its
	// input must not page a person to approve an empty command. The text is still a deny, so a client
	// that reads only the text fails closed too.
	if err := checkArgs(toolUseSchema(), args); err != nil {
		res := permissionResult(deny("Ony: invalid arguments for %s: %v; denied.", ToolApproveToolUse, err))
		res.IsError = true
		return res, nil
	}
	return permissionResult(s.decideToolUse(ctx, req)), nil
}

func permissionResult(d PermissionDecision) *mcp.CallToolResult {
	b, err := json.Marshal(d)
	if err != nil { // cannot happen: UpdatedInput was validated as a JSON object
		b = []byte(`{"behavior":"deny","message":"Ony: internal error rendering the decision"}`)
	}
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}
}

func deny(format string, args ...any) PermissionDecision {
	return PermissionDecision{Behavior: "deny", Message: fmt.Sprintf(format, args...)}
}

func (s *server) decideToolUse(ctx context.Context, req *mcp.CallToolRequest) PermissionDecision {
	var tu ToolUse
	var args json.RawMessage
	if req != nil && req.Params != nil {
		args = req.Params.Arguments
	}
	if err := json.Unmarshal(args, &tu); err != nil || strings.TrimSpace(tu.ToolName) == "" {
		return deny("Ony: the permission request had no tool_name; denied.")
	}
	input := bytes.TrimSpace(tu.Input)
	if len(input) == 0 || bytes.Equal(input, []byte("null")) {
		input = []byte("{}")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, input); err != nil || compact.Bytes()[0] != '{' {
		return deny("Ony: the input of %s is not a JSON object; denied.", tu.ToolName)
	}
	input = compact.Bytes()

	// The same mapping as `ony hook`, so that risk policies see one action per kind of tool call.
	cr, key, err := hook.Map(&hook.Input{ToolName: tu.ToolName, ToolInput: input, ToolUseID: tu.ToolUseID},
		hook.AgentClaudeCode, s.o.PermissionTimeout, 0)
	if err != nil {
		return deny("Ony could not describe the %s call, so it is denied: %v", tu.ToolName, err)
	}
	if tu.ToolUseID != "" {
		// Claude Code's tool_use_id names one call: a repeated prompt for it joins the same request.
		// Namespaced, so that it never collides with the key `ony hook` uses for the same call.
		sum := sha256.Sum256([]byte(tu.ToolUseID))
		key = "mcp-permission-" + hex.EncodeToString(sum[:16])
	}
	h, _, err := s.c.Create(ctx, cr, key)
	if err != nil {
		return deny("Ony could not ask for approval of %s, so it is denied: %v", tu.ToolName, toolError(err))
	}
	h, err = s.waitFinal(ctx, req, h)
	switch {
	case errors.Is(err, errNoDecision):
		return deny("Nobody decided on %s in Ony within %s, so it is denied; the request was withdrawn.", tu.ToolName, s.o.PermissionTimeout)
	case err != nil:
		return deny("Ony got no decision on %s, so it is denied: %v", tu.ToolName, toolError(err))
	}
	dec := Decision{Approved: h.Status == client.StatusApproved}
	if h.Decision != nil {
		dec.Option, dec.Comment, dec.By = h.Decision.Option, h.Decision.Comment, deciderName(h.Decision.By)
		dec.Approved = dec.Approved && h.Decision.Approved
	}
	if dec.Approved {
		return PermissionDecision{Behavior: "allow", UpdatedInput: input}
	}
	if h.Status == client.StatusExpired {
		return deny("Nobody decided on %s in Ony before the request expired, so it is denied.", tu.ToolName)
	}
	msg := fmt.Sprintf("%s was %s in Ony", tu.ToolName, h.Status)
	if dec.By != "" {
		msg += " by " + dec.By
	}
	if dec.Comment != "" {
		msg += ": " + dec.Comment
	} else {
		msg += "."
	}
	return PermissionDecision{Behavior: "deny", Message: msg}
}

// waitFinal waits until h is final or a little after its timeout (the server expires it then). If the
// wait ends first — the client gave up, or Ony was unreachable — the handoff is withdrawn so that nobody
// approves a tool use that will not happen. It returns the latest state known, which may be pending.
func (s *server) waitFinal(ctx context.Context, req *mcp.CallToolRequest, h *client.Handoff) (*client.Handoff, error) {
	if h.Final() {
		return h, nil
	}
	defer s.progress(ctx, req, h.ID)()
	wctx, cancel := context.WithTimeout(ctx, s.o.PermissionTimeout+15*time.Second)
	got, err := s.c.Wait(wctx, h.ID)
	cancel()
	if err == nil {
		return got, nil
	}
	if ctx.Err() == nil && wctx.Err() != nil {
		err = errNoDecision // our own deadline
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer ccancel()
	if c, cerr := s.c.Cancel(cctx, h.ID, "the agent stopped waiting for a decision"); cerr == nil {
		h = c
	} else if g, gerr := s.c.Get(cctx, h.ID); gerr == nil {
		h = g // decided meanwhile, perhaps
	}
	if h.Final() && h.Status != client.StatusCancelled {
		return h, nil // decided after all
	}
	return h, err
}

// errNoDecision means the wait ran out without a decision and the request was withdrawn.
var errNoDecision = errors.New("no decision in time")
