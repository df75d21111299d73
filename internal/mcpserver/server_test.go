package mcpserver_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/mcpserver"
	"github.com/ony-ai/ony/internal/testserver"
)

// session connects an MCP client to a new server over in-memory transports: every call below is a real
// JSON-RPC exchange, initialize included.
func session(t *testing.T, c *client.Client, o mcpserver.Options) *mcp.ClientSession {
	t.Helper()
	o.Client = c
	srv := mcpserver.New(o)
	st, ct := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

func start(t *testing.T) *testserver.Instance {
	t.Helper()
	return testserver.Start(t, testserver.Options{}).Seed(t)
}

func agent(t *testing.T, in *testserver.Instance) *mcp.ClientSession {
	return session(t, in.Agent(t), mcpserver.Options{})
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func call(t *testing.T, ctx context.Context, cs *mcp.ClientSession, tool string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	return res
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("want one content block, got %d", len(res.Content))
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content is %T, want text", res.Content[0])
	}
	return tc.Text
}

// result checks a successful request_approval/get_decision result: structured content, and the same
// JSON in the text block.
func result(t *testing.T, res *mcp.CallToolResult) mcpserver.Result {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", text(t, res))
	}
	var fromText, fromStructured mcpserver.Result
	if err := json.Unmarshal([]byte(text(t, res)), &fromText); err != nil {
		t.Fatalf("text block is not the result JSON: %v", err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &fromStructured); err != nil {
		t.Fatal(err)
	}
	if fromText.ID == "" || fromText.ID != fromStructured.ID || fromText.Status != fromStructured.Status {
		t.Fatalf("text %+v and structured %+v differ", fromText, fromStructured)
	}
	return fromStructured
}

// decideWhenPending has a member decide the first pending handoff titled title, from another goroutine,
// and sends its id.
func decideWhenPending(t *testing.T, ctx context.Context, in *testserver.Instance, title, option, comment string) <-chan string {
	t.Helper()
	person := in.Person(t, in.Member)
	ids := make(chan string, 1)
	go func() {
		defer close(ids)
		for ctx.Err() == nil {
			hs, err := person.List(ctx, client.StatusPending, 50)
			if err != nil {
				t.Errorf("list: %v", err)
				return
			}
			for _, h := range hs {
				if h.Title == title {
					if _, err := person.Decide(ctx, h.ID, option, comment); err != nil {
						t.Errorf("decide: %v", err)
					}
					ids <- h.ID
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return ids
}

func TestInitializeAndToolsList(t *testing.T) {
	t.Parallel()
	c, err := client.New("http://127.0.0.1:1", "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := session(t, c, mcpserver.Options{Version: "v9.9.9"})
	init := cs.InitializeResult()
	if init.ServerInfo.Name != "ony" || init.ServerInfo.Version != "v9.9.9" || !strings.Contains(init.Instructions, "request_approval") {
		t.Fatalf("initialize: %+v", init)
	}
	if init.Capabilities.Tools == nil {
		t.Fatal("tools capability not advertised")
	}
	lr, err := cs.ListTools(ctxFor(t, 10*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]map[string]any{}
	for _, tool := range lr.Tools {
		b, _ := json.Marshal(tool)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		tools[tool.Name] = m
	}
	if len(tools) != 3 {
		t.Fatalf("tools: %v", lr.Tools)
	}
	schema := func(tool, which string) map[string]any {
		m, _ := tools[tool][which].(map[string]any)
		if m == nil {
			t.Fatalf("%s has no %s", tool, which)
		}
		return m
	}
	required := func(s map[string]any) string {
		var out []string
		for _, r := range s["required"].([]any) {
			out = append(out, r.(string))
		}
		return strings.Join(out, ",")
	}
	props := func(s map[string]any) map[string]any { return s["properties"].(map[string]any) }

	ra := schema(mcpserver.ToolRequestApproval, "inputSchema")
	if required(ra) != "action,title" {
		t.Errorf("request_approval required = %s", required(ra))
	}
	for _, p := range []string{"action", "title", "summary", "payload", "payload_kind", "labels", "options", "timeout", "wait", "wait_seconds", "idempotency_key"} {
		if _, ok := props(ra)[p]; !ok {
			t.Errorf("request_approval lacks %s", p)
		}
	}
	ws := props(ra)["wait_seconds"].(map[string]any)
	if ws["maximum"] != float64(55) || ws["minimum"] != float64(0) {
		t.Errorf("wait_seconds schema: %v", ws)
	}
	if pk := props(ra)["payload_kind"].(map[string]any); len(pk["enum"].([]any)) != 4 {
		t.Errorf("payload_kind schema: %v", pk)
	}
	out := schema(mcpserver.ToolRequestApproval, "outputSchema")
	for _, p := range []string{"id", "status", "risk", "risk_reasons", "console_url", "decision", "message"} {
		if _, ok := props(out)[p]; !ok {
			t.Errorf("request_approval output lacks %s", p)
		}
	}
	if required(schema(mcpserver.ToolGetDecision, "inputSchema")) != "id" {
		t.Error("get_decision must require id")
	}
	schema(mcpserver.ToolGetDecision, "outputSchema")
	at := schema(mcpserver.ToolApproveToolUse, "inputSchema")
	if required(at) != "tool_name,input" || props(at)["tool_use_id"] == nil {
		t.Errorf("approve_tool_use schema: %v", at)
	}
}

func TestRequestApprovalApproved(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	ids := decideWhenPending(t, ctx, in, "Drop the staging database", "approve", "go ahead")
	res := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, map[string]any{
		"action": "db.drop", "title": "Drop the staging database", "summary": "it is stale",
		"payload": "DROP DATABASE staging;", "payload_kind": "command", "labels": map[string]string{"env": "staging"},
		"timeout": "10m", "wait_seconds": 30,
	}))
	if id := <-ids; res.ID != id {
		t.Fatalf("result for %s, member decided %s", res.ID, id)
	}
	if res.Status != client.StatusApproved || res.Decision == nil || !res.Decision.Approved || res.Decision.Option != "approve" ||
		res.Decision.By != "Mia Member" || res.Decision.Comment != "go ahead" {
		t.Fatalf("result: %+v decision %+v", res, res.Decision)
	}
	if res.Risk == "" || !strings.HasSuffix(res.ConsoleURL, "/console/handoffs/"+res.ID) || !strings.Contains(res.Message, "You may proceed") {
		t.Fatalf("result: %+v", res)
	}
	h, err := in.Agent(t).Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h.Action != "db.drop" || h.Payload == nil || h.Payload.Kind != "command" || h.Labels["env"] != "staging" ||
		h.ExpiresAt.Sub(h.CreatedAt) != 10*time.Minute {
		t.Fatalf("handoff: %+v", h)
	}
}

func TestRequestApprovalDeniedWithOptions(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	ids := decideWhenPending(t, ctx, in, "Deploy api v2", "staging_only", "not prod on a Friday")
	res := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, map[string]any{
		"action": "deploy.production", "title": "Deploy api v2",
		"options": []map[string]any{
			{"id": "ship", "label": "Ship to prod", "approves": true},
			{"id": "staging_only", "label": "Staging only"},
		},
	}))
	<-ids
	if res.Status != client.StatusDenied || res.Decision == nil || res.Decision.Approved || res.Decision.Option != "staging_only" {
		t.Fatalf("result: %+v decision %+v", res, res.Decision)
	}
	for _, want := range []string{"Denied by Mia Member", "Staging only", "not prod on a Friday", "Do not proceed"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q lacks %q", res.Message, want)
		}
	}
}

func TestPendingThenGetDecision(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	begin := time.Now()
	res := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, map[string]any{
		"action": "shell.exec", "title": "Clean the build dir", "payload": "rm -rf ./build", "payload_kind": "command", "wait_seconds": 1,
	}))
	if res.Status != client.StatusPending || res.Decision != nil || !strings.Contains(res.Message, "get_decision") ||
		!strings.Contains(res.Message, res.ID) {
		t.Fatalf("result: %+v", res)
	}
	if d := time.Since(begin); d < time.Second || d > 10*time.Second {
		t.Fatalf("waited %s for wait_seconds 1", d)
	}
	// Not waiting at all.
	res0 := result(t, call(t, ctx, cs, mcpserver.ToolGetDecision, map[string]any{"id": res.ID, "wait_seconds": 0}))
	if res0.Status != client.StatusPending {
		t.Fatalf("get_decision: %+v", res0)
	}
	ids := decideWhenPending(t, ctx, in, "Clean the build dir", "approve", "")
	got := result(t, call(t, ctx, cs, mcpserver.ToolGetDecision, map[string]any{"id": res.ID, "wait_seconds": 30}))
	<-ids
	if got.ID != res.ID || got.Status != client.StatusApproved || got.Decision == nil || !got.Decision.Approved {
		t.Fatalf("get_decision: %+v", got)
	}
	// An unknown id is a tool error with the API's code.
	bad := call(t, ctx, cs, mcpserver.ToolGetDecision, map[string]any{"id": "0190c3f8-0000-7000-8000-000000000000"})
	if !bad.IsError || !strings.Contains(text(t, bad), "not_found") {
		t.Fatalf("unknown id: %v %s", bad.IsError, text(t, bad))
	}
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	args := map[string]any{"action": "git.push", "title": "Push main", "wait": false}
	first := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, args))
	again := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, args))
	if again.ID != first.ID || !again.Replayed || first.Replayed {
		t.Fatalf("a repeated call while pending must join the same request: %+v then %+v", first, again)
	}
	// Once a final answer has been returned, an identical request is a new question: an approval is never
	// silently reused.
	if _, err := in.Person(t, in.Member).Decide(ctx, first.ID, "approve", ""); err != nil {
		t.Fatal(err)
	}
	if got := result(t, call(t, ctx, cs, mcpserver.ToolGetDecision, map[string]any{"id": first.ID})); got.Status != client.StatusApproved {
		t.Fatalf("get_decision: %+v", got)
	}
	fresh := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, args))
	if fresh.ID == first.ID || fresh.Status != client.StatusPending || fresh.Replayed {
		t.Fatalf("asked again after the answer: %+v", fresh)
	}
	// Another MCP session (another process, in practice) asks anew too.
	other := result(t, call(t, ctx, agent(t, in), mcpserver.ToolRequestApproval, args))
	if other.ID == fresh.ID || other.ID == first.ID {
		t.Fatal("another session joined this session's request")
	}

	// The caller's own key replays whatever the state.
	keyed := map[string]any{"action": "git.push", "title": "Push main", "wait": false, "idempotency_key": "push-main-1"}
	k1 := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, keyed))
	if _, err := in.Person(t, in.Member).Decide(ctx, k1.ID, "deny", ""); err != nil {
		t.Fatal(err)
	}
	k2 := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, keyed))
	k3 := result(t, call(t, ctx, cs, mcpserver.ToolRequestApproval, keyed))
	if k2.ID != k1.ID || k3.ID != k1.ID || k3.Status != client.StatusDenied || !k3.Replayed || !strings.Contains(k3.Message, "identical earlier request") {
		t.Fatalf("keyed: %+v %+v %+v", k1, k2, k3)
	}
	// The same key with a different request is the API's conflict, as a tool error.
	keyed["title"] = "Push main again"
	conflict := call(t, ctx, cs, mcpserver.ToolRequestApproval, keyed)
	if !conflict.IsError || !strings.Contains(text(t, conflict), "idempotency_key_reused") {
		t.Fatalf("conflict: %s", text(t, conflict))
	}
}

func TestToolErrors(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 30*time.Second)

	badToken := unknownToken
	c, err := client.New(in.URL, badToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := session(t, c, mcpserver.Options{})
	secret := "DROP TABLE users; -- s3cr3t-payload"
	res := call(t, ctx, cs, mcpserver.ToolRequestApproval, map[string]any{"action": "db.exec", "title": "Drop users", "payload": secret})
	msg := text(t, res)
	if !res.IsError || !strings.Contains(msg, "invalid_token") || !strings.Contains(msg, "HTTP 401") {
		t.Fatalf("bad token: %v %q", res.IsError, msg)
	}
	if strings.Contains(msg, badToken) || strings.Contains(msg, "s3cr3t") {
		t.Fatalf("error leaks the token or payload: %q", msg)
	}
	res = call(t, ctx, cs, mcpserver.ToolGetDecision, map[string]any{"id": "x"})
	if !res.IsError || !strings.Contains(text(t, res), "invalid_token") {
		t.Fatalf("get_decision with a bad token: %s", text(t, res))
	}

	good := agent(t, in)
	res = call(t, ctx, good, mcpserver.ToolRequestApproval, map[string]any{"action": "Not An Action", "title": "x"})
	if !res.IsError {
		t.Fatal("invalid action accepted")
	}
	res = call(t, ctx, good, mcpserver.ToolRequestApproval, map[string]any{"action": "a.b", "title": "x", "timeout": "soon"})
	if !res.IsError || !strings.Contains(text(t, res), "invalid timeout") {
		t.Fatalf("bad timeout: %s", text(t, res))
	}
	res = call(t, ctx, good, mcpserver.ToolRequestApproval, map[string]any{"action": "a.b", "title": "x", "timeout": "1s", "wait": false})
	if !res.IsError || !strings.Contains(text(t, res), "invalid_timeout") {
		t.Fatalf("server-side validation: %s", text(t, res))
	}

	// Ony unreachable.
	down := session(t, closedServerClient(t), mcpserver.Options{})
	res = call(t, ctx, down, mcpserver.ToolRequestApproval, map[string]any{"action": "a.b", "title": "x"})
	if !res.IsError || !strings.Contains(text(t, res), "unreachable") {
		t.Fatalf("server down: %s", text(t, res))
	}
}

// closedServerClient returns a client for an address where nothing listens.
func closedServerClient(t *testing.T) *client.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.New("http://"+addr, "tok", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func permission(t *testing.T, res *mcp.CallToolResult) mcpserver.PermissionDecision {
	t.Helper()
	if res.IsError {
		t.Fatalf("approve_tool_use must answer, not fail: %s", text(t, res))
	}
	var d mcpserver.PermissionDecision
	dec := json.NewDecoder(strings.NewReader(text(t, res)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("answer %q: %v", text(t, res), err)
	}
	return d
}

func TestApproveToolUseAllow(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	ids := decideWhenPending(t, ctx, in, "Remove build output", "approve", "")
	input := `{"command":"rm -rf ./build","description":"Remove build output","timeout":120000}`
	d := permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{
		"tool_name": "Bash", "input": json.RawMessage(input), "tool_use_id": "toolu_01",
	}))
	id := <-ids
	if d.Behavior != "allow" || string(d.UpdatedInput) != input || d.Message != "" {
		t.Fatalf("answer: %+v (%s)", d, d.UpdatedInput)
	}
	h, err := in.Agent(t).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Action != "shell.exec" || h.Payload == nil || h.Payload.Kind != "command" || h.Payload.Bytes != len("rm -rf ./build") ||
		h.Labels["agent"] != "claude-code" || h.Risk == "low" {
		t.Fatalf("handoff: %+v payload %+v", h, h.Payload)
	}
	// Claude Code asking again for the same tool use gets the same answer, without a new request.
	d = permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{
		"tool_name": "Bash", "input": json.RawMessage(input), "tool_use_id": "toolu_01",
	}))
	if d.Behavior != "allow" {
		t.Fatalf("repeat: %+v", d)
	}
	if hs, _ := in.Person(t, in.Member).List(ctx, "", 50); len(hs) != 1 {
		t.Fatalf("%d handoffs, want 1", len(hs))
	}
}

func TestApproveToolUseDeny(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 60*time.Second)
	cs := agent(t, in)
	ids := decideWhenPending(t, ctx, in, "Edit /etc/hosts", "deny", "leave hosts alone")
	d := permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{
		"tool_name": "Edit", "input": map[string]any{"file_path": "/etc/hosts", "old_string": "a\nb", "new_string": "c"}, "tool_use_id": "toolu_02",
	}))
	id := <-ids
	if d.Behavior != "deny" || d.UpdatedInput != nil || !strings.Contains(d.Message, "leave hosts alone") || !strings.Contains(d.Message, "Mia Member") {
		t.Fatalf("answer: %+v", d)
	}
	h, err := in.Agent(t).Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Action != "file.write" || h.Payload == nil || h.Payload.Kind != "diff" || h.Labels["agent"] != "claude-code" {
		t.Fatalf("handoff: %+v", h)
	}
}

func TestApproveToolUseFailsClosed(t *testing.T) {
	t.Parallel()
	// Each case has its own deadline: parallel subtests start only when a slot frees, and a deadline
	// shared from here would count that wait.
	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 60*time.Second)
		cs := session(t, closedServerClient(t), mcpserver.Options{})
		d := permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{"tool_name": "Bash", "input": map[string]any{"command": "ls"}}))
		if d.Behavior != "deny" || !strings.Contains(d.Message, "unreachable") {
			t.Fatalf("answer: %+v", d)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 60*time.Second)
		in := start(t)
		c, _ := client.New(in.URL, unknownToken, nil)
		cs := session(t, c, mcpserver.Options{})
		d := permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{"tool_name": "Write", "input": map[string]any{"file_path": "a", "content": "b"}}))
		if d.Behavior != "deny" || !strings.Contains(d.Message, "invalid_token") || strings.Contains(d.Message, unknownToken) {
			t.Fatalf("answer: %+v", d)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 60*time.Second)
		cs := session(t, closedServerClient(t), mcpserver.Options{})
		for _, args := range []any{
			map[string]any{"tool_name": "", "input": map[string]any{}},
			map[string]any{"tool_name": "Bash", "input": []any{1}},
			map[string]any{"input": map[string]any{}},
		} {
			res := call(t, ctx, cs, mcpserver.ToolApproveToolUse, args)
			if strings.Contains(text(t, res), "allow") {
				t.Fatalf("%v: %s", args, text(t, res))
			}
		}
	})
	t.Run("nobody decides", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 60*time.Second)
		in := start(t)
		cs := session(t, in.Agent(t), mcpserver.Options{PermissionTimeout: 10 * time.Second})
		d := permission(t, call(t, ctx, cs, mcpserver.ToolApproveToolUse, map[string]any{"tool_name": "mcp__github__merge_pr", "input": map[string]any{"pr": 7}}))
		if d.Behavior != "deny" || !strings.Contains(d.Message, "expired") {
			t.Fatalf("answer: %+v", d)
		}
		hs, err := in.Agent(t).List(ctx, "", 10)
		if err != nil || len(hs) != 1 || hs[0].Action != "mcp.github.merge_pr" || hs[0].Status != client.StatusExpired {
			t.Fatalf("handoffs: %+v %v", hs, err)
		}
	})
	t.Run("client gives up", func(t *testing.T) {
		t.Parallel()
		ctx := ctxFor(t, 60*time.Second)
		in := start(t)
		cs := agent(t, in)
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := cs.CallTool(short, &mcp.CallToolParams{Name: mcpserver.ToolApproveToolUse,
			Arguments: map[string]any{"tool_name": "WebFetch", "input": map[string]any{"url": "https://example.com"}}}); err == nil {
			t.Fatal("call outlived its context")
		}
		// The request is withdrawn, so nobody approves a tool use that will not happen.
		for {
			hs, err := in.Agent(t).List(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(hs) == 1 && hs[0].Status == client.StatusCancelled {
				if hs[0].Action != "tool.webfetch" {
					t.Fatalf("action %q", hs[0].Action)
				}
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("handoffs: %+v", hs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// unknownToken is a well-formed device token that no device has.
var unknownToken = "ony_dev_" + strings.Repeat("A", 43)

func TestProgressWhileWaiting(t *testing.T) {
	t.Parallel()
	in := start(t)
	ctx := ctxFor(t, 30*time.Second)
	srv := mcpserver.New(mcpserver.Options{Client: in.Agent(t), ProgressInterval: 100 * time.Millisecond})
	st, ct := mcp.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *mcp.ProgressNotificationParams, 100)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case got <- r.Params:
			default:
			}
		},
	}).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cs.Close(); ss.Wait() }()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: mcpserver.ToolRequestApproval, Meta: mcp.Meta{"progressToken": "p1"},
		Arguments: map[string]any{"action": "a.b", "title": "Wait a second", "wait_seconds": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if r := result(t, res); r.Status != client.StatusPending {
		t.Fatalf("result: %+v", r)
	}
	select {
	case p := <-got:
		if p.ProgressToken != "p1" || !strings.Contains(p.Message, "waiting for a person") {
			t.Fatalf("progress: %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no progress notification while waiting")
	}
}
