package mcpserver_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/mcpserver"
	"github.com/ony-ai/ony/internal/version"
)

// approve_tool_use checks its arguments against its own schema before it creates anything: a call
// missing a required property, or with one of the wrong type, is a tool error — and still a deny to a
// client that reads only the text — and nobody is paged.
func TestApproveToolUseChecksItsSchema(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 120*time.Second)
	// A call that got through would page people and then wait this long for them.
	cs := session(t, in.Agent(t), mcpserver.Options{PermissionTimeout: 10 * time.Second})
	for _, tt := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"only tool_name", map[string]any{"tool_name": "Bash"}, "input"},
		{"only input", map[string]any{"input": map[string]any{"command": "ls"}}, "tool_name"},
		{"nothing", map[string]any{}, "tool_name, input"},
		{"input null", map[string]any{"tool_name": "Bash", "input": nil}, "input"},
		{"tool_name a number", map[string]any{"tool_name": 7, "input": map[string]any{}}, "tool_name must be a string"},
		{"input a string", map[string]any{"tool_name": "Bash", "input": "rm -rf /SECRET-CANARY"}, "input must be an object"},
		{"input an array", map[string]any{"tool_name": "Bash", "input": []any{1}}, "input must be an object"},
		{"tool_use_id an object", map[string]any{"tool_name": "Bash", "input": map[string]any{}, "tool_use_id": map[string]any{}}, "tool_use_id must be a string"},
	} {
		res := call(t, ctx, cs, mcpserver.ToolApproveToolUse, tt.args)
		txt := text(t, res)
		if !res.IsError {
			t.Errorf("%s: not a tool error: %s", tt.name, txt)
		}
		var d mcpserver.PermissionDecision
		if err := json.Unmarshal([]byte(txt), &d); err != nil || d.Behavior != "deny" || !strings.Contains(d.Message, tt.want) {
			t.Errorf("%s: answer %q (%v), want a deny naming %q", tt.name, txt, err, tt.want)
		}
		if strings.Contains(txt, "SECRET-CANARY") {
			t.Errorf("%s: the answer echoes an argument's value: %s", tt.name, txt)
		}
	}
	hs, err := in.Agent(t).List(ctx, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d handoffs created by 8 malformed calls", len(hs))
	if len(hs) != 0 {
		t.Errorf("malformed calls created %d handoffs (people were paged for them), want 0", len(hs))
	}
}

// While approve_tool_use waits for a person it sends progress notifications with the request's
// progress token, so that clients that extend their timeout on progress keep waiting.
func TestApproveToolUseProgress(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	srv := mcpserver.New(mcpserver.Options{Client: in.Agent(t), ProgressInterval: 50 * time.Millisecond,
		PermissionTimeout: 10 * time.Second}) // without notifications the call ends, denied, after this
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*mcp.ProgressNotificationParams
	third := make(chan struct{})
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r.Params)
			if len(got) == 3 {
				close(third)
			}
		},
	}).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Wait() }()

	// The person decides only once three notifications have arrived: the call was waiting throughout.
	person := in.Person(t, in.Member)
	// The waiter is woken before the decide request is answered: the test waits for that answer too,
	// or its end would cancel the request still in flight.
	decided := make(chan struct{})
	go func() {
		defer close(decided)
		select {
		case <-third:
		case <-ctx.Done():
			return
		}
		hs, err := person.List(ctx, client.StatusPending, 10)
		if err != nil || len(hs) != 1 {
			t.Errorf("pending handoffs: %v, %v", hs, err)
			return
		}
		if _, err := person.Decide(ctx, hs[0].ID, "approve", ""); err != nil {
			t.Errorf("decide: %v", err)
		}
	}()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolApproveToolUse, Meta: mcp.Meta{"progressToken": "tu-1"},
		Arguments: map[string]any{"tool_name": "Bash", "input": map[string]any{"command": "make deploy"}}})
	if err != nil {
		t.Fatal(err)
	}
	<-decided
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d progress notifications while waiting", len(got))
	if d := permission(t, res); d.Behavior != "allow" {
		t.Fatalf("answer: %+v", d)
	}
	if len(got) < 3 {
		t.Fatalf("%d progress notifications, want at least 3", len(got))
	}
	for i, p := range got {
		if p.ProgressToken != "tu-1" || p.Progress != float64(i+1) || !strings.Contains(p.Message, "waiting for a person") {
			t.Errorf("notification %d: %+v", i, p)
		}
	}
}

// The server info names this build as `ony version` does.
func TestServerInfoVersion(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1", "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := session(t, c, mcpserver.Options{})
	if got, want := cs.InitializeResult().ServerInfo.Version, version.Get().Short(); got != want || got == "" {
		t.Errorf("server info version %q, want the build's %q", got, want)
	}
}
