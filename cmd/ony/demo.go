package main

import (
	"context"
	"flag"
	"io"
	"time"

	"github.com/ony-ai/ony/internal/demo"
)

// cmdDemo is `ony demo`: Ony with simulated people, providers and agent (package demo).
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o demo.Options
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "HTTP address (host:port; port 0 picks a free one)")
	fs.StringVar(&o.DataDir, "data-dir", "", "an empty directory for the demo's database (default: a temporary one, deleted at exit)")
	fs.DurationVar(&o.Interval, "interval", 20*time.Second, "how often the simulated agent posts a sample handoff")
	fs.IntVar(&o.Count, "count", 0, "post this many sample handoffs, then stop once all are final (0: keep going)")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fs.Float64Var(&o.WaitScale, "wait-scale", 1, "multiply the demo ladders' waits, e.g. 0.2 for five times faster (redial gaps stay at least 10s)")
	fs.BoolVar(&o.Verbose, "verbose", false, "print the server's log on stderr (default: to a file the banner names; warnings also on stderr)")
	fs.StringVar(&o.LogFile, "log", "", "write the server's log to this file (default: ony-demo.log in --data-dir, else a new file in the temporary directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.Check(); err != nil {
		return usageErr("%v", err)
	}
	return demo.Run(ctx, o, stdout, stderr)
}
