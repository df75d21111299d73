package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/app"
)

const auditUsage = `usage:
  ony audit key           [--config FILE]             print the checkpoint verifier keys
  ony audit keygen        --name NAME                 print a new signing key (for audit.signing_keys)
  ony audit verify        [--org ID] [--config FILE]  recompute every log from its leaves
  ony audit export        --org ID -o FILE [--config FILE]
  ony audit verify-export FILE --key VKEY [--key VKEY] [--checkpoint OLD_CHECKPOINT_FILE] [--json]`

func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", auditUsage)
	}
	switch args[0] {
	case "key":
		return cmdAuditKey(args[1:], stdout, stderr)
	case "keygen":
		return cmdAuditKeygen(args[1:], stdout, stderr)
	case "verify":
		return cmdAuditVerify(ctx, args[1:], stdout, stderr)
	case "export":
		return cmdAuditExport(ctx, args[1:], stderr)
	case "verify-export":
		return cmdAuditVerifyExport(args[1:], stdout, stderr)
	}
	return usageErr("unknown audit command %q\n%s", args[0], auditUsage)
}

func cmdAuditKey(args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("audit key", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	l, err := app.OpenAuditLog(cfg)
	if err != nil {
		return err
	}
	for _, k := range l.Keys() {
		fmt.Fprintln(stdout, k)
	}
	return nil
}

func cmdAuditKeygen(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("audit keygen", stderr)
	name := fs.String("name", "", "key name, usually the instance name")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || strings.ContainsAny(*name, " +\t\n") {
		return usageErr("--name is required and may not contain spaces or '+'")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, skey)
	fmt.Fprintf(stderr, "verifier key (public): %s\n", vkey)
	return nil
}

func cmdAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("audit verify", stderr)
	orgID := fs.String("org", "", "organization id (default: every log)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	l, s := sv.Audit, sv.Store
	var reps []audit.Report
	if *orgID != "" {
		rep, err := l.VerifyOrg(ctx, s, *orgID)
		if err != nil {
			return fmt.Errorf("verify %s: %w", *orgID, err)
		}
		reps = []audit.Report{rep}
	} else if reps, err = l.VerifyAll(ctx, s); err != nil {
		return err
	}
	bad := 0
	for _, rep := range reps {
		if rep.OK() {
			// The verification's own time: on a small log the command's wall time is mostly process start
			// and connecting.
			fmt.Fprintf(stdout, "ok    %s  %d leaves  checkpoint %d  root %s  verified in %s (%.0f leaves/s)\n",
				rep.Origin, rep.Size, rep.CheckpointSize, rep.Root, rep.Elapsed.Round(time.Microsecond), leavesPerSecond(rep))
			continue
		}
		bad++
		fmt.Fprintf(stdout, "FAIL  %s  first bad index %d: %s\n", rep.Origin, rep.BadIndex, rep.Problem)
	}
	if bad > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d logs failed verification", bad, len(reps))}
	}
	return nil
}

func leavesPerSecond(rep audit.Report) float64 {
	if rep.Elapsed <= 0 {
		return 0
	}
	return float64(rep.Size) / rep.Elapsed.Seconds()
}

func cmdAuditExport(ctx context.Context, args []string, stderr io.Writer) error {
	fs, cfgPath := newFlags("audit export", stderr)
	orgID := fs.String("org", "", "organization id")
	out := fs.String("o", "", "output file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *out == "" {
		return usageErr("--org and -o are required")
	}
	if _, err := uuid.Parse(*orgID); err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("no such organization %q: an organization id is a UUID", *orgID)}
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	// Into memory first: a refused or failed export leaves no file behind, nor truncates an old one.
	var buf bytes.Buffer
	err = sv.Audit.Export(ctx, sv.Store, *orgID, &buf)
	if errors.Is(err, audit.ErrUnknownOrg) {
		return &exitError{code: 1, msg: fmt.Sprintf("no such organization %s in this database, nor an audit log under that id", *orgID)}
	}
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type keyList []string

func (k *keyList) String() string     { return strings.Join(*k, ",") }
func (k *keyList) Set(v string) error { *k = append(*k, v); return nil }

func cmdAuditVerifyExport(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("audit verify-export", stderr)
	var keys keyList
	fs.Var(&keys, "key", "verifier key (repeatable); from `ony audit key` or GET /v1/audit/key")
	older := fs.String("checkpoint", "", "a checkpoint you kept earlier, to prove nothing was rewritten since")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	// The file comes first on the command line; flags follow it.
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageErr("usage: ony audit verify-export FILE --key VKEY [--checkpoint OLD]")
	}
	file := args[0]
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if len(keys) == 0 {
		return usageErr("--key is required: verify against a key you trust, not one inside the export")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var old []byte
	if *older != "" {
		if old, err = os.ReadFile(*older); err != nil {
			return err
		}
	}
	rep, err := audit.VerifyExport(data, keys, old)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	switch {
	case *asJSON:
		_ = json.NewEncoder(stdout).Encode(rep)
	case rep.OK():
		fmt.Fprintf(stdout, "ok  %s  %d leaves  root %s\n", rep.Origin, rep.Size, rep.Root)
	}
	// With --checkpoint, say whether the consistency check ran and what it found: silence would read
	// the same whether the older checkpoint was checked or ignored.
	if !*asJSON && old != nil {
		switch rep.Consistency {
		case audit.ConsistencyOK:
			if rep.OlderSize == 0 {
				fmt.Fprintln(stdout, "ok  consistency: your checkpoint is of the empty log, a prefix of every log")
				break
			}
			fmt.Fprintf(stdout, "ok  consistency: your checkpoint of %d leaves is a prefix of this log (RFC 6962 consistency proof checked)\n", rep.OlderSize)
		case audit.ConsistencyFailed:
			fmt.Fprintf(stdout, "FAIL  consistency: your checkpoint of %d leaves is not a prefix of this log\n", rep.OlderSize)
		default:
			fmt.Fprintln(stdout, "FAIL  consistency: not checked (see the error)")
		}
	}
	if !rep.OK() {
		return &exitError{code: 1, msg: "export does not verify: " + rep.Problem}
	}
	return nil
}
