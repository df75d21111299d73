package hook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ony-ai/ony/client"
)

// The server's limits on what an agent sends (handoff package).
const (
	maxTitleRunes   = 200
	maxSummaryRunes = 4000
	maxLabelValue   = 256
	maxActionLen    = 100
	maxIdemKeyLen   = 255
)

// Map turns a tool call into the handoff that asks a human about it, and the idempotency key that
// makes a retried hook find the same handoff instead of creating a twin (the tool_use_id).
//
//	Bash                 → shell.exec, payload kind command: the command
//	Write                → file.write, payload kind diff: "+++ path" and the content as added lines
//	Edit, MultiEdit      → file.write, payload kind diff: old_string as removed, new_string as added lines
//	apply_patch (Codex)  → file.write, payload kind diff: the patch
//	mcp__<server>__<tool> → mcp.<server>.<tool>, payload kind text: the tool input as JSON
//	anything else        → tool.<name>, payload kind text: the tool input as JSON
//
// Labels are agent=<agent> and cwd=<basename of cwd>. A payload over maxPayload bytes is truncated,
// and the summary says so.
func Map(in *Input, agent string, timeout time.Duration, maxPayload int) (client.CreateRequest, string, error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	m := in.fields()
	who := agentName(agent)
	where := ""
	if in.Cwd != "" {
		where = " in " + in.Cwd
	}
	var (
		action, title, summary string
		kind, content          string
	)
	tool := in.ToolName
	switch {
	case strings.HasPrefix(tool, "mcp__"):
		server, name, ok := strings.Cut(strings.TrimPrefix(tool, "mcp__"), "__")
		if ok && server != "" && name != "" {
			action = "mcp." + segment(server, 40) + "." + segment(name, 54)
			title = "MCP " + server + ": " + name
			summary = fmt.Sprintf("%s wants to call the MCP tool %q of server %q%s.", who, name, server, where)
		} else {
			action = "mcp." + segment(strings.TrimPrefix(tool, "mcp__"), 95)
			title = "MCP " + tool
			summary = fmt.Sprintf("%s wants to call the MCP tool %q%s.", who, tool, where)
		}
		kind, content = "text", prettyJSON(in.ToolInput)
	case strings.EqualFold(tool, "Bash"):
		action = "shell.exec"
		cmd, ok := str(m, "command")
		if !ok {
			cmd, ok = argv(m["command"])
		}
		if ok && strings.TrimSpace(cmd) != "" {
			kind, content = "command", cmd
			title, _ = str(m, "description")
			if strings.TrimSpace(title) == "" {
				title = firstLine(cmd)
			}
		} else {
			kind, content = "text", prettyJSON(in.ToolInput)
			title = "Run a shell command (unrecognized input)"
		}
		summary = fmt.Sprintf("%s wants to run a shell command%s.", who, where)
	case strings.EqualFold(tool, "Write"):
		action = "file.write"
		path, okp := str(m, "file_path")
		body, okc := str(m, "content")
		if okp && okc {
			kind, content = "diff", writeDiff(path, body)
			title = "Write " + path
			summary = fmt.Sprintf("%s wants to write %s (%d bytes)%s.", who, path, len(body), where)
		} else {
			kind, content = "text", prettyJSON(in.ToolInput)
			title = "Write a file (unrecognized input)"
			summary = fmt.Sprintf("%s wants to write a file%s.", who, where)
		}
	case strings.EqualFold(tool, "Edit") || strings.EqualFold(tool, "MultiEdit"):
		action = "file.write"
		path, okp := str(m, "file_path")
		edits, oke := editsOf(m)
		if okp && oke {
			kind, content = "diff", editDiff(path, edits)
			title = "Edit " + path
			if len(edits) > 1 {
				title += fmt.Sprintf(" (%d edits)", len(edits))
			}
			summary = fmt.Sprintf("%s wants to edit %s%s.", who, path, where)
		} else {
			kind, content = "text", prettyJSON(in.ToolInput)
			title = "Edit a file (unrecognized input)"
			summary = fmt.Sprintf("%s wants to edit a file%s.", who, where)
		}
	case tool == "apply_patch":
		action = "file.write"
		patch, ok := str(m, "command")
		if !ok {
			patch, ok = str(m, "patch")
		}
		if ok && patch != "" {
			kind, content = "diff", patch
			title = "Apply a patch"
			if files := patchFiles(patch); len(files) > 0 {
				title += " to " + strings.Join(files, ", ")
			}
		} else {
			kind, content = "text", prettyJSON(in.ToolInput)
			title = "Apply a patch (unrecognized input)"
		}
		summary = fmt.Sprintf("%s wants to change files%s.", who, where)
	default:
		action = "tool." + segment(tool, 95)
		title = tool
		for _, k := range []string{"file_path", "notebook_path", "path", "url", "query", "pattern", "description", "command", "prompt"} {
			if v, ok := str(m, k); ok && strings.TrimSpace(v) != "" {
				title += ": " + firstLine(v)
				break
			}
		}
		summary = fmt.Sprintf("%s wants to use the %s tool%s.", who, tool, where)
		kind, content = "text", prettyJSON(in.ToolInput)
	}
	if n := len(content); n > maxPayload {
		content = truncate(content, maxPayload)
		summary += fmt.Sprintf("\nThe payload is truncated: it shows %d of %d bytes.", len(content), n)
	}
	title = oneLine(title, maxTitleRunes)
	if title == "" {
		title = oneLine(tool, maxTitleRunes)
	}
	if title == "" {
		title = "Use a tool"
	}
	req := client.CreateRequest{
		Action:  action,
		Title:   title,
		Summary: multiLine(summary, maxSummaryRunes),
		Labels:  map[string]string{"agent": agent},
		Timeout: timeout,
	}
	if content != "" {
		req.Payload = &client.Payload{Kind: kind, Content: content}
	}
	if base := cwdLabel(in.Cwd); base != "" {
		req.Labels["cwd"] = base
	}
	return req, idempotencyKey(in.ToolUseID), nil
}

func agentName(agent string) string {
	if agent == AgentCodex {
		return "Codex"
	}
	return "Claude Code"
}

// idempotencyKey is the tool_use_id; a long one is hashed to fit the server's limit, and a missing
// one gets a random key (no retry can then be recognized, but no two calls ever share a decision).
func idempotencyKey(toolUseID string) string {
	switch {
	case toolUseID == "":
		return client.NewIdempotencyKey()
	case len(toolUseID) > maxIdemKeyLen:
		sum := sha256.Sum256([]byte(toolUseID))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return toolUseID
}

// segment makes s one segment of an action: lowercase letters, digits, _ and -, starting with a
// letter or digit, at most n bytes.
func segment(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if out == "" || out[0] == '_' || out[0] == '-' {
		out = "x" + out
	}
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// argv joins a command given as an array of strings (an exec-style argv), for display.
func argv(raw json.RawMessage) (string, bool) {
	var parts []string
	if len(raw) == 0 || json.Unmarshal(raw, &parts) != nil || len(parts) == 0 {
		return "", false
	}
	return strings.Join(parts, " "), true
}

type edit struct {
	Old, New   string
	ReplaceAll bool
}

// editsOf reads Edit's old_string/new_string or MultiEdit's edits.
func editsOf(m map[string]json.RawMessage) ([]edit, bool) {
	if raw, ok := m["edits"]; ok {
		var list []struct {
			Old        *string `json:"old_string"`
			New        *string `json:"new_string"`
			ReplaceAll bool    `json:"replace_all"`
		}
		if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
			return nil, false
		}
		out := make([]edit, 0, len(list))
		for _, e := range list {
			if e.Old == nil || e.New == nil {
				return nil, false
			}
			out = append(out, edit{Old: *e.Old, New: *e.New, ReplaceAll: e.ReplaceAll})
		}
		return out, true
	}
	o, ok1 := str(m, "old_string")
	n, ok2 := str(m, "new_string")
	if !ok1 || !ok2 {
		return nil, false
	}
	var all bool
	if raw, ok := m["replace_all"]; ok {
		_ = json.Unmarshal(raw, &all)
	}
	return []edit{{Old: o, New: n, ReplaceAll: all}}, true
}

func writeDiff(path, content string) string {
	var b strings.Builder
	b.WriteString("+++ " + oneLine(path, 1000) + "\n")
	n, last := lines(content)
	fmt.Fprintf(&b, "@@ new content, %d lines @@\n", len(n))
	for _, l := range n {
		b.WriteString("+" + l + "\n")
	}
	if !last && len(n) > 0 {
		b.WriteString("\\ No newline at end of file\n")
	}
	return b.String()
}

func editDiff(path string, edits []edit) string {
	var b strings.Builder
	p := oneLine(path, 1000)
	b.WriteString("--- " + p + "\n+++ " + p + "\n")
	for i, e := range edits {
		b.WriteString("@@")
		if len(edits) > 1 {
			fmt.Fprintf(&b, " edit %d of %d", i+1, len(edits))
		}
		if e.ReplaceAll {
			b.WriteString(" replace every occurrence")
		}
		b.WriteString(" @@\n")
		old, _ := lines(e.Old)
		for _, l := range old {
			b.WriteString("-" + l + "\n")
		}
		nw, _ := lines(e.New)
		for _, l := range nw {
			b.WriteString("+" + l + "\n")
		}
	}
	return b.String()
}

// lines splits s into lines; the bool reports whether s ended with a newline.
func lines(s string) ([]string, bool) {
	if s == "" {
		return nil, true
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	nl := strings.HasSuffix(s, "\n")
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n"), nl
}

// patchFiles lists the files an apply_patch patch touches (at most three, then "…").
func patchFiles(patch string) []string {
	var out []string
	for _, l := range strings.Split(patch, "\n") {
		for _, p := range []string{"*** Add File: ", "*** Update File: ", "*** Delete File: "} {
			if f, ok := strings.CutPrefix(strings.TrimSpace(l), p); ok && f != "" {
				if len(out) == 3 {
					return append(out, "…")
				}
				out = append(out, f)
			}
		}
	}
	return out
}

func prettyJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	if b.String() == "{}" {
		return ""
	}
	return b.String()
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			return l
		}
	}
	return ""
}

// oneLine makes s a single line without control characters, of at most n runes.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	return truncRunes(s, n)
}

// multiLine keeps newlines and tabs, drops other control characters, and bounds s to n runes.
func multiLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return truncRunes(strings.TrimSpace(s), n)
}

func truncRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// truncate cuts s to at most n bytes, on a rune boundary, with a note saying so.
func truncate(s string, n int) string {
	note := fmt.Sprintf("\n… [truncated by ony hook: %d bytes in all]\n", len(s))
	keep := n - len(note)
	if keep <= 0 {
		return s[:0]
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + note
}

// cwdLabel is the last element of cwd, as a label value.
func cwdLabel(cwd string) string {
	if strings.TrimSpace(cwd) == "" {
		return ""
	}
	base := filepath.Base(filepath.Clean(cwd))
	base = oneLine(base, maxLabelValue)
	for len(base) > maxLabelValue {
		r := []rune(base)
		base = string(r[:len(r)-1])
	}
	return base
}
