package main

// `ony retention run`: the payload retention sweep (issue 17) on demand, or what it would do.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/app"
)

const retentionUsage = `usage:
  ony retention run [--dry-run] [--json] [--config FILE]
      scrub the payloads past their retention window now (the daily sweep's work), or with --dry-run
      only count them; prints each organization's window and count`

func cmdRetention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "run" {
		return usageErr("%s", retentionUsage)
	}
	fs, cfgPath := newFlags("retention run", stderr)
	dryRun := fs.Bool("dry-run", false, "count what would be scrubbed; change nothing")
	asJSON := fs.Bool("json", false, "print one JSON object per organization")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	logger := app.NewLogger(stderr, cfg.Log)
	s, err := app.OpenExistingStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer s.Close()
	var r handoff.Retention
	if !*dryRun {
		// Scrubbing records audit leaves, which need the instance's log; a dry run reads only.
		l, err := app.OpenAuditLog(cfg)
		if err != nil {
			return err
		}
		r.Audit = l
	}
	r.Store, r.DefaultDays, r.Logger = s, cfg.Retention.PayloadDays, logger
	results, err := r.Sweep(ctx, *dryRun)
	verb := "scrubbed"
	if *dryRun {
		verb = "would scrub"
	}
	total := 0
	for _, res := range results {
		total += res.Scrubbed
		switch {
		case *asJSON:
			_ = json.NewEncoder(stdout).Encode(struct {
				handoff.RetentionResult
				DryRun bool `json:"dry_run"`
			}{res, *dryRun})
		case res.Days == 0:
			fmt.Fprintf(stdout, "%s  keeps payloads (no retention window)\n", res.OrgID)
		default:
			fmt.Fprintf(stdout, "%s  window %d days  %s %d payload(s)\n", res.OrgID, res.Days, verb, res.Scrubbed)
		}
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%s %d payload(s) in %d organization(s)\n", verb, total, len(results))
	}
	return err
}
