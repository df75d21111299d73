// Package mcpserver is Ony as an MCP server: tools with which an AI agent asks a person for a decision
// (request_approval, get_decision) and a permission prompt for Claude Code (approve_tool_use). It
// talks to an Ony server through the agent API client, as the device whose token it was given.
//
// `ony mcp` serves it over stdio; see docs/mcp.md.
package mcpserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/version"
)

// Tool names.
const (
	ToolRequestApproval = "request_approval"
	ToolGetDecision     = "get_decision"
	ToolApproveToolUse  = "approve_tool_use"
)

// Wait bounds for request_approval and get_decision. One call blocks at most MaxWaitSeconds so that it
// ends before the one-minute request timeouts many MCP clients apply; the model calls get_decision
// again to keep waiting.
const (
	DefaultWaitSeconds = 50
	MaxWaitSeconds     = 55
)

// DefaultPermissionTimeout is how long approve_tool_use waits for a person unless Options say otherwise.
const DefaultPermissionTimeout = 10 * time.Minute

// Options configure a server.
type Options struct {
	// Client is the agent API client, authenticated with a device token. Required.
	Client *client.Client
	// Version is reported to MCP clients; empty means this build's, as `ony version` names it.
	Version string
	// PermissionTimeout is how long approve_tool_use gives a person (the handoff's timeout) before the
	// tool use is denied. Zero means DefaultPermissionTimeout.
	PermissionTimeout time.Duration
	// ProgressInterval is how often a waiting call sends a progress notification, when the client asked
	// for progress. Zero means 15 s.
	ProgressInterval time.Duration
	// Logger receives the SDK's and this package's diagnostics; nil discards them. Never stdout: on
	// stdio that is the protocol stream.
	Logger *slog.Logger
}

// Result is what request_approval and get_decision return, as structured content and as JSON text.
type Result struct {
	ID          string    `json:"id" jsonschema:"the handoff id; pass it to get_decision"`
	Status      string    `json:"status" jsonschema:"pending, approved, denied, expired or cancelled; proceed only when approved"`
	Risk        string    `json:"risk,omitempty" jsonschema:"risk level Ony assessed (low, medium, high, critical)"`
	RiskReasons []string  `json:"risk_reasons,omitempty" jsonschema:"why Ony assessed that risk"`
	ConsoleURL  string    `json:"console_url,omitempty" jsonschema:"where a person reviews the request"`
	Decision    *Decision `json:"decision,omitempty" jsonschema:"how the request ended; absent while pending"`
	Replayed    bool      `json:"replayed,omitempty" jsonschema:"true when an identical earlier request (same idempotency key) was returned instead of creating a new one"`
	Message     string    `json:"message" jsonschema:"what happened and what to do next"`
}

// Decision is how a handoff ended.
type Decision struct {
	Option   string `json:"option,omitempty" jsonschema:"id of the option the person chose"`
	Approved bool   `json:"approved" jsonschema:"true only if the chosen option approves"`
	By       string `json:"by,omitempty" jsonschema:"who decided"`
	Comment  string `json:"comment,omitempty" jsonschema:"the person's comment"`
}

// RequestInput is request_approval's input.
type RequestInput struct {
	Action         string            `json:"action" jsonschema:"what you want to do, as dotted lowercase words, e.g. shell.exec, db.migrate, deploy.production, payment.refund"`
	Title          string            `json:"title" jsonschema:"one line (at most 200 characters) saying what you will do if approved"`
	Summary        string            `json:"summary,omitempty" jsonschema:"why, and what happens if it goes wrong (at most 4000 characters)"`
	Payload        string            `json:"payload,omitempty" jsonschema:"the exact command, diff, log or text to review; shown only in the signed-in console and used to assess risk"`
	PayloadKind    string            `json:"payload_kind,omitempty" jsonschema:"command, diff, log or text (default text)"`
	Labels         map[string]string `json:"labels,omitempty" jsonschema:"context such as env=prod or repo=api; keys are lowercase"`
	Options        []OptionInput     `json:"options,omitempty" jsonschema:"the answers a person can give (2 to 10); default approve and deny"`
	Timeout        string            `json:"timeout,omitempty" jsonschema:"how long a person has, e.g. 10m or 2h (at least 10s); default: the server's"`
	Wait           *bool             `json:"wait,omitempty" jsonschema:"wait for the decision in this call (default true)"`
	WaitSeconds    *int              `json:"wait_seconds,omitempty" jsonschema:"longest this call blocks, 0 to 55 (default 50); if still pending, call get_decision"`
	IdempotencyKey string            `json:"idempotency_key,omitempty" jsonschema:"optional; calls with the same key return the same request instead of asking again"`
}

// OptionInput is one answer a person can give.
type OptionInput struct {
	ID       string `json:"id" jsonschema:"lowercase id, e.g. approve, deny, staging_only"`
	Label    string `json:"label" jsonschema:"what the person sees"`
	Approves bool   `json:"approves,omitempty" jsonschema:"true if choosing it means go ahead; at least one option must approve and one must not"`
}

// GetInput is get_decision's input.
type GetInput struct {
	ID          string `json:"id" jsonschema:"the id request_approval returned"`
	WaitSeconds *int   `json:"wait_seconds,omitempty" jsonschema:"longest this call blocks, 0 to 55 (default 50)"`
}

// instructions are sent to the client at initialization; many clients show them to the model.
const instructions = `Ony puts a human in the loop. Before a risky or irreversible action (deleting data, deploying, ` +
	`migrating a database, spending money, pushing to a shared branch, running a destructive command), call ` +
	`request_approval and proceed only if the result's status is "approved". If the status is "pending", nothing ` +
	`has been decided: call get_decision with the id to keep waiting, and never proceed meanwhile. "denied", ` +
	`"expired" and "cancelled" all mean do not proceed.`

type server struct {
	c        *client.Client
	o        Options
	log      *slog.Logger
	nonce    string // distinguishes this process's derived idempotency keys from another's
	mu       sync.Mutex
	gen      map[string]int  // derived key → generation; bumped when an identical request is asked anew
	answered map[string]bool // handoff ids whose final state a tool already returned
}

// New returns the MCP server with Ony's tools. Run it with (*mcp.Server).Run on a transport.
func New(o Options) *mcp.Server {
	if o.Client == nil {
		panic("mcpserver: Options.Client is required")
	}
	if o.PermissionTimeout <= 0 {
		o.PermissionTimeout = DefaultPermissionTimeout
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 15 * time.Second
	}
	if o.Version == "" {
		o.Version = version.Get().Short()
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{c: o.Client, o: o, log: log, nonce: rand.Text(), gen: map[string]int{}, answered: map[string]bool{}}
	srv := mcp.NewServer(&mcp.Implementation{Name: "ony", Title: "Ony", Version: o.Version}, &mcp.ServerOptions{
		Instructions: instructions,
		Logger:       o.Logger,
		// Only tools, and their list never changes.
		Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name:  ToolRequestApproval,
		Title: "Ask a person to approve an action",
		Description: "Ask a person (through Ony) to approve an action before you take it, and wait for the decision. " +
			"Proceed only if status is \"approved\". If status is \"pending\" when the call returns, call get_decision " +
			"with the id. Retrying an identical call returns the same request rather than asking twice.",
		InputSchema: requestSchema(),
	}, s.requestApproval)

	mcp.AddTool(srv, &mcp.Tool{
		Name:        ToolGetDecision,
		Title:       "Wait for a person's decision",
		Description: "Wait for the decision on a request_approval id and return it. Proceed only if status is \"approved\"; if still \"pending\", call again.",
		InputSchema: getSchema(),
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, s.getDecision)

	srv.AddTool(&mcp.Tool{
		Name:  ToolApproveToolUse,
		Title: "Permission prompt for Claude Code",
		Description: "For Claude Code's --permission-prompt-tool: asks a person in Ony whether a tool call may run, " +
			"and answers {\"behavior\":\"allow\",...} or {\"behavior\":\"deny\",...}. Not for direct use.",
		InputSchema: approveToolUseSchema,
	}, s.approveToolUse)
	return srv
}

func requestSchema() *jsonschema.Schema {
	sc, err := jsonschema.For[RequestInput](nil)
	if err != nil {
		panic(err)
	}
	p := sc.Properties
	p["action"].Pattern = `^[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$`
	p["action"].MaxLength = jsonschema.Ptr(100)
	p["title"].MinLength = jsonschema.Ptr(1)
	p["title"].MaxLength = jsonschema.Ptr(200)
	p["payload_kind"].Enum = []any{"command", "diff", "log", "text"}
	p["options"].MaxItems = jsonschema.Ptr(10)
	waitSeconds(p["wait_seconds"])
	return sc
}

func getSchema() *jsonschema.Schema {
	sc, err := jsonschema.For[GetInput](nil)
	if err != nil {
		panic(err)
	}
	sc.Properties["id"].MinLength = jsonschema.Ptr(1)
	waitSeconds(sc.Properties["wait_seconds"])
	return sc
}

func waitSeconds(p *jsonschema.Schema) {
	p.Minimum = jsonschema.Ptr(0.0)
	p.Maximum = jsonschema.Ptr(float64(MaxWaitSeconds))
}

func (s *server) requestApproval(ctx context.Context, req *mcp.CallToolRequest, in RequestInput) (*mcp.CallToolResult, Result, error) {
	cr, err := in.createRequest()
	if err != nil {
		return nil, Result{}, err
	}
	h, replayed, err := s.create(ctx, sessionID(req), cr, in.IdempotencyKey)
	if err != nil {
		return nil, Result{}, toolError(err)
	}
	if (in.Wait == nil || *in.Wait) && !h.Final() {
		id := h.ID
		if h, err = s.wait(ctx, req, h, waitDuration(in.WaitSeconds)); err != nil {
			return nil, Result{}, fmt.Errorf("%w (the request was created: call get_decision with id %q)", toolError(err), id)
		}
	}
	return nil, s.result(h, replayed), nil
}

func (s *server) getDecision(ctx context.Context, req *mcp.CallToolRequest, in GetInput) (*mcp.CallToolResult, Result, error) {
	id := strings.TrimSpace(in.ID)
	if id == "" {
		return nil, Result{}, errors.New("id is required: pass the id request_approval returned")
	}
	h, err := s.c.Get(ctx, id)
	if err != nil {
		return nil, Result{}, toolError(err)
	}
	if !h.Final() {
		if h, err = s.wait(ctx, req, h, waitDuration(in.WaitSeconds)); err != nil {
			return nil, Result{}, toolError(err)
		}
	}
	return nil, s.result(h, false), nil
}

func (in RequestInput) createRequest() (client.CreateRequest, error) {
	cr := client.CreateRequest{Action: in.Action, Title: in.Title, Summary: in.Summary, Labels: in.Labels}
	if in.Payload != "" {
		kind := in.PayloadKind
		if kind == "" {
			kind = "text"
		}
		cr.Payload = &client.Payload{Kind: kind, Content: in.Payload}
	}
	for _, o := range in.Options {
		cr.Options = append(cr.Options, client.Option(o))
	}
	if in.Timeout != "" {
		d, err := time.ParseDuration(strings.TrimSpace(in.Timeout))
		if err != nil || d <= 0 {
			return cr, fmt.Errorf("invalid timeout %q: give a duration such as 10m or 2h", in.Timeout)
		}
		cr.Timeout = d
	}
	return cr, nil
}

func waitDuration(sec *int) time.Duration {
	n := DefaultWaitSeconds
	if sec != nil {
		n = min(max(*sec, 0), MaxWaitSeconds)
	}
	return time.Duration(n) * time.Second
}

// create posts the handoff. With the caller's idempotency key, a repeated call returns the same
// handoff, whatever state it is in. Without one, the key is derived from this process, the MCP session
// and the request, so that a call repeated because its answer was lost (the client timed out, the
// model called again instead of get_decision) joins the same handoff instead of asking twice — but an
// identical request asked again after a tool already returned its final answer is asked anew: an
// earlier approval is never silently reused for a new question.
func (s *server) create(ctx context.Context, session string, cr client.CreateRequest, userKey string) (*client.Handoff, bool, error) {
	if userKey != "" {
		return s.c.Create(ctx, cr, userKey)
	}
	base := s.derivedKey(session, cr)
	for {
		s.mu.Lock()
		g := s.gen[base]
		s.mu.Unlock()
		h, replayed, err := s.c.Create(ctx, cr, fmt.Sprintf("mcp-%s-%d", base, g))
		if err != nil || !replayed || !h.Final() || !s.wasAnswered(h.ID) {
			return h, replayed, err
		}
		s.mu.Lock()
		if s.gen[base] == g {
			s.gen[base] = g + 1
		}
		s.mu.Unlock()
	}
}

func (s *server) derivedKey(session string, cr client.CreateRequest) string {
	b, _ := json.Marshal(struct {
		R client.CreateRequest
		T time.Duration
	}{cr, cr.Timeout})
	sum := sha256.Sum256([]byte(s.nonce + "\x00" + session + "\x00" + string(b)))
	return hex.EncodeToString(sum[:16])
}

func (s *server) wasAnswered(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.answered[id]
}

// wait long-polls until h is final or d has passed, and returns the latest state either way.
func (s *server) wait(ctx context.Context, req *mcp.CallToolRequest, h *client.Handoff, d time.Duration) (*client.Handoff, error) {
	if d <= 0 {
		return h, nil
	}
	defer s.progress(ctx, req, h.ID)()
	wctx, cancel := context.WithTimeout(ctx, d)
	got, err := s.c.Wait(wctx, h.ID)
	cancel()
	switch {
	case err == nil:
		return got, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case wctx.Err() != nil:
		// Our time is up; report the latest state (it may have been decided just now).
		return s.c.Get(ctx, h.ID)
	}
	return nil, err
}

// progress sends a progress notification every ProgressInterval while a call waits, if the client gave
// a progress token: some clients extend their request timeout on progress. It returns the stop function.
func (s *server) progress(ctx context.Context, req *mcp.CallToolRequest, id string) func() {
	if req == nil || req.Session == nil || req.Params == nil || req.Params.GetProgressToken() == nil {
		return func() {}
	}
	token := req.Params.GetProgressToken()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.o.ProgressInterval)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
					Progress: float64(n), Message: "waiting for a person to decide on " + id})
				if err != nil {
					s.log.Debug("mcp progress notification", "err", err)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// result renders h for the model, and remembers that its final state has been told.
func (s *server) result(h *client.Handoff, replayed bool) Result {
	r := Result{ID: h.ID, Status: h.Status, Risk: h.Risk, RiskReasons: h.RiskReasons, ConsoleURL: h.ConsoleURL, Replayed: replayed}
	if !h.Final() {
		r.Message = fmt.Sprintf("Pending: nobody has decided yet (risk %s). Do not proceed. Call get_decision with id %q to keep waiting.",
			orUnknown(h.Risk), h.ID)
		return r
	}
	s.mu.Lock()
	s.answered[h.ID] = true
	s.mu.Unlock()
	d := &Decision{Approved: h.Status == client.StatusApproved}
	if h.Decision != nil {
		d.Option, d.Comment, d.By = h.Decision.Option, h.Decision.Comment, deciderName(h.Decision.By)
		d.Approved = h.Decision.Approved && h.Status == client.StatusApproved
	}
	r.Decision = d
	r.Message = finalMessage(h, d)
	if replayed {
		r.Message += " (This is the answer to an identical earlier request; to ask again, change the request or pass a new idempotency_key.)"
	}
	return r
}

func finalMessage(h *client.Handoff, d *Decision) string {
	var b strings.Builder
	switch h.Status {
	case client.StatusApproved:
		b.WriteString("Approved")
	case client.StatusDenied:
		b.WriteString("Denied")
	case client.StatusExpired:
		b.WriteString("Expired: nobody decided in time")
	case client.StatusCancelled:
		b.WriteString("Cancelled")
	default:
		b.WriteString("Ended with status " + h.Status)
	}
	if d.By != "" {
		b.WriteString(" by " + d.By)
	}
	if d.Option != "" {
		b.WriteString(fmt.Sprintf(" (option %q", d.Option))
		for _, o := range h.Options {
			if o.ID == d.Option && o.Label != "" {
				b.WriteString(fmt.Sprintf(": %s", o.Label))
			}
		}
		b.WriteString(")")
	}
	b.WriteString(".")
	if d.Comment != "" {
		b.WriteString(" Comment: " + d.Comment)
		if !strings.HasSuffix(d.Comment, ".") {
			b.WriteString(".")
		}
	}
	if d.Approved {
		b.WriteString(" You may proceed.")
	} else {
		b.WriteString(" Do not proceed.")
	}
	return b.String()
}

func deciderName(by *client.Decider) string {
	switch {
	case by == nil:
		return ""
	case by.Name != "":
		return by.Name
	case by.ID != "":
		return by.Kind + " " + by.ID
	}
	return by.Kind
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func sessionID(req *mcp.CallToolRequest) string {
	if req == nil || req.Session == nil {
		return ""
	}
	return req.Session.ID()
}

// toolError renders an error for the model: an API error as its stable code and message; anything
// else as a failure to reach Ony. Neither carries the token (a header) or the payload (never echoed).
func toolError(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("ony error %s (HTTP %d): %s", ae.Code, ae.Status, ae.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ony error cancelled: %v", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the method and URL: the model needs the cause
	}
	return fmt.Errorf("ony error unreachable: could not reach the Ony server: %v", err)
}
