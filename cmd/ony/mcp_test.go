package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMCPStdio runs `ony mcp`'s wiring in-process over pipes standing in for stdin and stdout: a
// client initializes and lists the tools, then closes stdin, which ends the command cleanly.
func TestMCPStdio(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inR, inW := io.Pipe()   // the client writes the server's stdin
	outR, outW := io.Pipe() // the server writes its stdout
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		// Nothing listens at the URL: listing tools must not need the server.
		err := cmdMCP(ctx, []string{"--url", "http://127.0.0.1:1", "--token", "ony_dev_x"}, inR, outW, &stderr)
		outW.Close()
		done <- err
	}()

	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctx, &mcp.IOTransport{Reader: outR, Writer: inW}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cs.InitializeResult().ServerInfo.Name; got != "ony" {
		t.Fatalf("server name %q", got)
	}
	lr, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range lr.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "approve_tool_use,get_decision,request_approval" {
		t.Fatalf("tools: %v", names)
	}
	cs.Close() // closes stdin
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ony mcp: %v (stderr %q)", err, stderr.String())
		}
	case <-ctx.Done():
		t.Fatal("ony mcp did not end when stdin closed")
	}
}

func TestMCPFlags(t *testing.T) {
	err := cmdMCP(context.Background(), []string{"--url", "http://x", "--token", "t", "--permission-timeout", "1s"}, strings.NewReader(""), io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("short permission timeout: %v", err)
	}
	err = cmdMCP(context.Background(), []string{"extra"}, strings.NewReader(""), io.Discard, io.Discard)
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("extra argument: %v", err)
	}
	t.Setenv("HOME", t.TempDir())
	for _, k := range []string{"ONY_URL", "ONY_TOKEN", "ONY_TOKEN_FILE", "ONY_CLIENT_CONFIG"} {
		t.Setenv(k, "")
	}
	var stdout bytes.Buffer
	err = cmdMCP(context.Background(), nil, strings.NewReader(""), &stdout, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ONY_URL") || stdout.Len() != 0 {
		t.Fatalf("unconfigured: %v, stdout %q", err, stdout.String())
	}
}
