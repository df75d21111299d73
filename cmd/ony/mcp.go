package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/ony-ai/ony/internal/mcpserver"
)

const mcpUsage = `usage: ony mcp [--url URL] [--permission-timeout 10m]

Serves Ony's MCP tools (request_approval, get_decision, approve_tool_use) over stdio, for an MCP
client to start, e.g. claude mcp add ony -- ony mcp. The server URL and device token come from
ONY_URL and ONY_TOKEN (or ONY_TOKEN_FILE, or ~/.config/ony/agent.yaml). See docs/mcp.md.
`

// cmdMCP runs `ony mcp`: an MCP server on stdin/stdout. Nothing but the protocol goes to stdout.
func cmdMCP(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		io.WriteString(stderr, mcpUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	af := addAgentFlags(fs)
	permTimeout := fs.Duration("permission-timeout", mcpserver.DefaultPermissionTimeout,
		"how long approve_tool_use waits for a person before denying (the handoff's timeout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *permTimeout < 10*time.Second {
		return usageErr("--permission-timeout must be at least 10s")
	}
	c, err := af.client()
	if err != nil {
		return err
	}
	srv := mcpserver.New(mcpserver.Options{Client: c, PermissionTimeout: *permTimeout})
	err = srv.Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}})
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil // interrupted, or the client closed stdin: a normal end
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
