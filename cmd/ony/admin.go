package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ony-ai/ony/app"
	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

func cmdAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("usage: ony admin create-org | create-device (see ony help)")
	}
	switch args[0] {
	case "create-org":
		return cmdCreateOrg(ctx, args[1:], stdin, stdout, stderr)
	case "create-device":
		return cmdCreateDevice(ctx, args[1:], stdout, stderr)
	case "revoke-device":
		return cmdRevokeDevice(ctx, args[1:], stdout, stderr)
	case "erase-org":
		return cmdEraseOrg(ctx, args[1:], stdout, stderr)
	}
	return usageErr("unknown admin command %q", args[0])
}

// cliActor is how the audit log names changes made with `ony admin`.
var cliActor = audit.Actor{Kind: "system", ID: "admin-cli"}

// openServices opens the configured database and audit log for commands that work on them directly
// (they also work while a server runs).
func openServices(ctx context.Context, cfgPath string, stderr io.Writer) (org.Service, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return org.Service{}, err
	}
	l, err := app.NewAuditLog(cfg, nil)
	if err != nil {
		return org.Service{}, err
	}
	s, err := app.OpenStore(ctx, cfg, app.NewLogger(stderr, cfg.Log))
	if err != nil {
		return org.Service{}, err
	}
	return org.Service{Store: s, Audit: l}, nil
}

// problemErr turns a caller-facing problem into a readable CLI line.
func problemErr(err error) error {
	if p, ok := problem.As(err); ok {
		return &exitError{code: 1, msg: p.Message}
	}
	return err
}

func cmdCreateOrg(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin create-org", stderr)
	name := fs.String("name", "", "organization name")
	email := fs.String("admin-email", "", "first admin's email")
	pwStdin := fs.Bool("password-stdin", false, "read the admin's password from stdin instead of generating one")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *email == "" {
		return usageErr("--name and --admin-email are required")
	}
	var pw string
	if *pwStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read password: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
		if pw == "" {
			return usageErr("--password-stdin: stdin was empty")
		}
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	o, err := sv.Create(ctx, cliActor, org.NewOrg{Name: *name, AdminEmail: *email, Password: pw})
	if err != nil {
		return problemErr(err)
	}
	if *asJSON {
		out := map[string]string{"org_id": o.OrgID, "admin_email": o.AdminEmail}
		if o.AdminPassword != "" {
			out["admin_password"] = o.AdminPassword
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintln(stdout, o.OrgID)
	if o.AdminPassword != "" {
		fmt.Fprintf(stderr, "admin %s one-time password (shown once): ", o.AdminEmail)
		fmt.Fprintln(stdout, o.AdminPassword)
	}
	return nil
}

func cmdCreateDevice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin create-device", stderr)
	orgID := fs.String("org", "", "organization id")
	name := fs.String("name", "", "device (agent) name")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *name == "" {
		return usageErr("--org and --name are required")
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	d, err := sv.CreateDevice(ctx, cliActor, *orgID, *name)
	if err != nil {
		return problemErr(err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"device_id": d.DeviceID, "token": d.Token})
	}
	fmt.Fprintf(stderr, "device %s token (shown once):\n", d.DeviceID)
	fmt.Fprintln(stdout, d.Token)
	return nil
}

// cmdEraseOrg is the right-to-erasure path: the organization, everything under it and its whole audit
// log are deleted; a tombstone in the instance log records that it happened.
func cmdEraseOrg(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin erase-org", stderr)
	orgID := fs.String("org", "", "organization id")
	confirm := fs.String("confirm", "", "the same organization id again: erasure cannot be undone")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *confirm != *orgID {
		return usageErr("--org ID and --confirm ID (the same id) are required; erasure is irreversible")
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	l, s := sv.Audit, sv.Store
	var exists bool
	err = s.InOrg(ctx, *orgID, func(tx store.OrgTx) error {
		_, err := tx.Org(ctx)
		exists = err == nil
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if !exists {
		return &exitError{code: 1, msg: "no such organization"}
	}
	if err := l.EraseOrg(ctx, s, *orgID, cliActor); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "erased organization %s; tombstone appended to the instance log\n", *orgID)
	return nil
}

func cmdRevokeDevice(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin revoke-device", stderr)
	orgID := fs.String("org", "", "organization id")
	deviceID := fs.String("device", "", "device id")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *deviceID == "" {
		return usageErr("--org and --device are required")
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	if err := sv.RevokeDevice(ctx, cliActor, *orgID, *deviceID); err != nil {
		return problemErr(err)
	}
	fmt.Fprintf(stdout, "revoked device %s\n", *deviceID)
	return nil
}
