package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

func cmdAdmin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("usage: ony admin create-org | create-device | revoke-device | erase-org | create-user | set-user | reset-password | rekey (see ony help)")
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
	case "create-user":
		return cmdCreateUser(ctx, args[1:], stdout, stderr)
	case "set-user":
		return cmdSetUser(ctx, args[1:], stdout, stderr)
	case "reset-password":
		return cmdResetPassword(ctx, args[1:], stdin, stdout, stderr)
	case "rekey": // issue 13
		return cmdRekey(ctx, args[1:], stdout, stderr)
	}
	return usageErr("unknown admin command %q", args[0])
}

// cliActor is how the audit log names changes made with `ony admin`.
var cliActor = audit.Actor{Kind: "system", ID: "admin-cli"}

// openServices opens the configured database and audit log for commands that work on them directly
// (they also work while a server runs). Neither is created: only `ony serve` and `ony migrate` create
// an instance, so a command run in the wrong directory says where it looked instead of making one.
func openServices(ctx context.Context, cfgPath string, stderr io.Writer) (org.Service, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return org.Service{}, err
	}
	s, err := app.OpenExistingStore(ctx, cfg, app.NewLogger(stderr, cfg.Log))
	if err != nil {
		return org.Service{}, err
	}
	l, err := app.OpenAuditLog(cfg)
	if err != nil {
		s.Close()
		return org.Service{}, err
	}
	return org.Service{Store: s, Audit: l, Kinds: app.BuiltinKinds()}, nil
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
	pw, err := passwordInput(*pwStdin, stdin)
	if err != nil {
		return err
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
		fmt.Fprintf(stderr, "the password of admin %s (shown once; it stays theirs until changed): ", o.AdminEmail)
		fmt.Fprintln(stdout, o.AdminPassword)
	}
	return nil
}

// readPassword reads one line from stdin for --password-stdin.
func readPassword(stdin io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usageErr("--password-stdin: stdin was empty")
	}
	return pw, nil
}

// passwordInput is the password --password-stdin asked to read; empty (generate one) without the flag.
func passwordInput(fromStdin bool, stdin io.Reader) (string, error) {
	if !fromStdin {
		return "", nil
	}
	return readPassword(stdin)
}

// cmdResetPassword gives a person a new password and ends their sessions: for someone who lost theirs,
// or whose password someone else learnt. People change their own with POST /v1/auth/password.
func cmdResetPassword(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin reset-password", stderr)
	orgID := fs.String("org", "", "organization id")
	email := fs.String("email", "", "the person's email")
	pwStdin := fs.Bool("password-stdin", false, "read the new password from stdin instead of generating one")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *email == "" {
		return usageErr("--org and --email are required")
	}
	pw, err := passwordInput(*pwStdin, stdin)
	if err != nil {
		return err
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	r, err := sv.ResetPassword(ctx, cliActor, *orgID, *email, pw)
	if err != nil {
		return problemErr(err)
	}
	addr, _ := org.NormalizeEmail(*email)
	if *asJSON {
		out := map[string]any{"user_id": r.UserID, "email": addr, "sessions_ended": r.SessionsEnded}
		if r.Password != "" {
			out["password"] = r.Password
		}
		return json.NewEncoder(stdout).Encode(out)
	}
	fmt.Fprintf(stdout, "reset the password of %s (user %s); %d session(s) ended", addr, r.UserID, r.SessionsEnded)
	if r.Password != "" {
		fmt.Fprintf(stdout, "; new password (shown once): %s", r.Password)
	}
	fmt.Fprintln(stdout)
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
	if err := sv.EraseOrg(ctx, cliActor, *orgID); err != nil {
		return problemErr(err)
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

func cmdCreateUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin create-user", stderr)
	orgID := fs.String("org", "", "organization id")
	email := fs.String("email", "", "the person's email (their sign-in)")
	name := fs.String("name", "", "the person's name, as messages and the audit export show it")
	role := fs.String("role", string(store.RoleMember), "admin, member or viewer")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *email == "" || *name == "" {
		return usageErr("--org, --email and --name are required")
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	u, err := sv.CreateUser(ctx, cliActor, *orgID, org.NewUser{Email: *email, Name: *name, Role: store.Role(*role)})
	if err != nil {
		return userErr(err, stderr)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"user_id": u.UserID, "email": u.Email, "name": u.Name,
			"role": string(u.Role), "password": u.Password})
	}
	fmt.Fprintf(stdout, "created %s %s <%s> (user %s); password (shown once): %s\n", u.Role, u.Name, u.Email, u.UserID, u.Password)
	return nil
}

func cmdSetUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgPath := newFlags("admin set-user", stderr)
	orgID := fs.String("org", "", "organization id")
	email := fs.String("email", "", "the person's email")
	var c org.Contact
	str := func(p **string, name, usage string) {
		fs.Func(name, usage, func(v string) error { *p = &v; return nil })
	}
	str(&c.Name, "name", "the person's name")
	str(&c.Timezone, "timezone", "IANA time zone, e.g. Europe/Lisbon (empty: UTC); quiet hours are read in it")
	kinds := app.BuiltinKinds()
	var contactFlags []string
	for _, ck := range kinds.Contacts() {
		name := "--" + contactFlag(ck)
		contactFlags = append(contactFlags, name)
		fs.Func(name[2:], ck.Usage+" (empty clears)", func(v string) error {
			if c.Addresses == nil {
				c.Addresses = map[string]*string{}
			}
			c.Addresses[ck.Name] = &v
			return nil
		})
	}
	str(&c.QuietHours, "quiet-hours", "when ladders that respect quiet hours leave the person alone, HH:MM-HH:MM in their time zone, e.g. 22:00-07:00 (empty clears)")
	fs.Func("groups", "comma-separated groups ladders target as group:NAME, e.g. oncall,dba (empty clears)", func(v string) error {
		gs := []string{}
		for _, g := range strings.Split(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				gs = append(gs, g)
			}
		}
		c.Groups = &gs
		return nil
	})
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *orgID == "" || *email == "" {
		return usageErr("--org and --email are required")
	}
	if c.Empty() {
		return usageErr("nothing to change: give at least one of --name, --timezone, %s, --quiet-hours, --groups", strings.Join(contactFlags, ", "))
	}
	sv, err := openServices(ctx, *cfgPath, stderr)
	if err != nil {
		return err
	}
	defer sv.Store.Close()
	u, err := sv.UpdateContact(ctx, cliActor, *orgID, *email, c)
	if err != nil {
		return userErr(err, stderr)
	}
	fmt.Fprintf(stdout, "updated %s: %s\n", u.Email, org.DescribeUser(u, kinds))
	return nil
}

// userErr prints one line per problem with a person's settings, named by its flag, and returns the
// summary; other errors are handled as problemErr does.
func userErr(err error, stderr io.Writer) error {
	list := org.Problems(err)
	if len(list) == 0 {
		return problemErr(err)
	}
	for _, p := range list {
		fmt.Fprintf(stderr, "--%s: %s\n", strings.ReplaceAll(p.Field, "_", "-"), p.Message)
	}
	noun := "problems"
	if len(list) == 1 {
		noun = "problem"
	}
	return &exitError{code: 1, msg: fmt.Sprintf("%d %s; nothing was changed", len(list), noun)}
}

// contactFlag is the flag that sets a contact: its field with dashes (slack_id → slack-id).
func contactFlag(ck *channel.ContactKind) string { return strings.ReplaceAll(ck.Field, "_", "-") }
