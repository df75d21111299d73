package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
)

// FuzzRun feeds arbitrary stdin to the hook: it never panics, always prints one valid decision (or,
// for another event than PreToolUse, only a warning), and
// every request it would send passes the server's validation (a request the server refuses is a deny
// for a call a human would have approved).
//
//	go test -run=^$ -fuzz=FuzzRun -fuzztime=30s ./internal/hook/
func FuzzRun(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, in := range inputs {
		if b, err := os.ReadFile(in); err == nil {
			f.Add(b, false)
		}
	}
	f.Add([]byte(`{"tool_name":"mcp__\u0000__x","tool_input":{"a":[1,{"b":null}]}}`), true)
	f.Add([]byte(`{"tool_name":"Edit","tool_input":{"file_path":"\n","old_string":"","new_string":"\r\n"}}`), false)
	f.Add([]byte(`{"tool_name":" ","cwd":"/","tool_input":null}`), false)
	f.Add([]byte(`{"tool_name":"Bash","tool_input":{"command":["bash","-lc","ls"]}}`), false)
	policy := testPolicy(f)
	f.Fuzz(func(t *testing.T, data []byte, codex bool) {
		agent := AgentClaudeCode
		if codex {
			agent = AgentCodex
		}
		srv := &fake{final: final(client.StatusDenied, "user", "Ana", "slack", "no")}
		cfg := Config{Agent: agent, Policy: policy, Deadline: 2 * time.Second, MaxPayload: 4096,
			Connect: func() (Server, error) { return srv, nil }}
		res := Run(context.Background(), cfg, bytes.NewReader(data))
		if checkOutput(t, res.JSON(agent), agent) == "none" {
			// No decision only where the agent named another event than PreToolUse.
			var in struct {
				Event string `json:"hook_event_name"`
			}
			if json.Unmarshal(bytes.TrimSpace(data), &in) != nil || in.Event == "" || in.Event == "PreToolUse" || len(srv.created) > 0 {
				t.Fatalf("no decision for %q", data)
			}
		}
		for _, c := range srv.created {
			if err := validRequest(c.Req, 4096); err != nil {
				t.Fatalf("the server would refuse the request for %q: %v", data, err)
			}
			if c.Key == "" || len(c.Key) > maxIdemKeyLen {
				t.Fatalf("idempotency key %q", c.Key)
			}
		}
		// Only the policy or a human allows; this server's human always denies.
		if res.Allow && len(srv.created) > 0 {
			t.Fatalf("allowed after a denial: %+v", res)
		}
	})
}
