// Package demo is `ony demo`: Ony on its embedded defaults with simulated people, providers and agent,
// so a newcomer sees a ladder climb — chat, text, an unanswered call, an answered redial, a decision on
// the keypad — within a minute, without any account anywhere.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/telegram"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/channel/simulated"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/handoff"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/sqlite"
	"github.com/ony-ai/ony/voice"
)

//go:embed ladders/*.yaml
var ladderFS embed.FS

// redialGapMin is the shortest redial gap a ladder may ask for (escalation's parser enforces it);
// --wait-scale never scales a gap below it.
const redialGapMin = 10 * time.Second

// rungSlack is how much longer than its redials a redialling rung waits at least, whatever
// --wait-scale says, so that the ladder does not end before the redial is answered.
const rungSlack = 30 * time.Second

// person is one simulated member of the demo organization.
type person struct {
	Name, Email                                      string
	Role                                             store.Role
	Timezone, QuietHours, Phone, SlackID, TelegramID string
	Groups                                           []string
	// PickUp is how long after answering a call the person presses a key (before --wait-scale).
	PickUp time.Duration
}

var cast = []person{
	{Name: "Ana", Email: "ana@example.com", Role: store.RoleAdmin, Timezone: "Europe/Lisbon", QuietHours: "23:00-07:00",
		Phone: "+15550100001", SlackID: "U0ANA", TelegramID: "1001", Groups: []string{"oncall"}, PickUp: 1500 * time.Millisecond},
	{Name: "Ben", Email: "ben@example.com", Role: store.RoleMember, Timezone: "America/New_York",
		Phone: "+15550100002", SlackID: "U0BEN", Groups: []string{"oncall", "dba"}, PickUp: 2500 * time.Millisecond},
	{Name: "Chen", Email: "chen@example.com", Role: store.RoleMember, Timezone: "Asia/Tokyo", QuietHours: "22:00-07:00",
		TelegramID: "1003", Groups: []string{"dba"}, PickUp: 2 * time.Second},
}

// samples are what the simulated agent asks, in turn: Ony derives low, high and critical risk.
var samples = []client.CreateRequest{
	{Action: "shell.exec", Title: "Run the unit tests",
		Payload: &client.Payload{Kind: "command", Content: "go test ./..."}},
	{Action: "deploy", Title: "Deploy api v2 to production", Labels: map[string]string{"env": "production"},
		Payload: &client.Payload{Kind: "command", Content: "kubectl apply -f deploy/api-v2.yaml"}},
	{Action: "db.migrate", Title: "Drop the legacy_email column in production", Labels: map[string]string{"env": "production"},
		Payload: &client.Payload{Kind: "text", Content: "ALTER TABLE users DROP COLUMN legacy_email;\nDROP TABLE legacy_email_backup;\n"}},
}

// Options are what `ony demo` takes from its flags; Check words its complaints by those flags.
type Options struct {
	// Listen is the HTTP address, host:port; port 0 picks a free one.
	Listen string
	// DataDir is an empty directory for the demo's database; empty means a temporary one, deleted
	// when Run returns.
	DataDir string
	// Interval is how often the simulated agent posts a sample handoff.
	Interval time.Duration
	// Count stops the demo once this many sample handoffs are final; 0 keeps going.
	Count int
	// Duration stops the demo after this long; 0 runs until ctx is done.
	Duration time.Duration
	// WaitScale multiplies the ladders' waits; redial gaps stay at least redialGapMin.
	WaitScale float64
	// Verbose prints the server's log on stderr, beside the timeline on stdout. Otherwise the log goes
	// to LogFile (default: ony-demo.log in the data directory when one is given, else a new file in
	// the temporary directory, kept after the demo) and only its warnings reach stderr.
	Verbose bool
	LogFile string
}

// Check reports the first option Run cannot work with. A data directory that holds an earlier run's
// database is refused rather than reused: its one-time secrets were printed once and are gone.
func (o Options) Check() error {
	switch {
	case o.Interval < 100*time.Millisecond:
		return errors.New("--interval must be at least 100ms")
	case o.Count < 0:
		return errors.New("--count must be 0 (keep going) or more")
	case o.Duration < 0:
		return errors.New("--duration must be 0 (until Ctrl-C) or more")
	case !(o.WaitScale >= 0.01 && o.WaitScale <= 10):
		return errors.New("--wait-scale must be between 0.01 and 10")
	case o.Verbose && o.LogFile != "":
		return errors.New("--verbose prints the log on stderr; --log writes it to a file: choose one")
	}
	if o.DataDir != "" {
		if _, err := os.Stat(filepath.Join(o.DataDir, sqlite.FileName)); err == nil {
			return fmt.Errorf("--data-dir %s holds the database of an earlier run; the demo needs an empty directory", o.DataDir)
		}
	}
	return nil
}

// Run runs the demo until ctx is done, o.Duration has passed or o.Count sample handoffs are final.
// What the newcomer should read (the banner, the agent, the escalations, the people) goes to stdout;
// the server's log goes to a file (see Options.Verbose).
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	if err := o.Check(); err != nil {
		return err
	}
	files, ladders, err := ladderFiles(o.WaitScale)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ony-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ladderDir := filepath.Join(tmp, "ladders")
	if err := os.Mkdir(ladderDir, 0o700); err != nil {
		return err
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(ladderDir, name), src, 0o600); err != nil {
			return err
		}
	}
	dir, kept := o.DataDir, true
	if dir == "" {
		dir, kept = filepath.Join(tmp, "data"), false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logDir := ""
	if kept {
		logDir = dir
	}
	lg, err := openLog(o, logDir, stderr)
	if err != nil {
		return err
	}
	defer lg.close()

	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	cfg := config.Default()
	cfg.Listen = l.Addr().String()
	cfg.PublicURL = publicURL(l.Addr())
	cfg.DataDir = dir
	cfg.Bootstrap.OrgName = "Ony demo"
	cfg.Escalation.LaddersDir = ladderDir
	// The caps keep real phone bills down; simulated calls cost nothing, and a long demo would hit them.
	cfg.Escalation.Limits = config.Limits{SMSPerUserHour: 1000, SMSPerUserDay: 1000, CallsPerUserHour: 1000,
		CallsPerUserDay: 1000, SMSPerOrgDay: 10000, CallsPerOrgDay: 10000}
	logger := lg.logger

	d := &session{out: &printer{w: stdout}, log: logger, scale: o.WaitScale, ladders: ladders, timeout: handoffTimeout(o.WaitScale),
		names: map[string]string{}, people: map[string]person{},
		auth: &authenticators{secret: map[string]string{}, last: map[string]int64{}}}
	// The people play their part until the agent is done; the server outlives them both.
	peopleCtx, stopPeople := context.WithCancel(ctx)
	defer stopPeople()
	chs := d.channels(peopleCtx, logger)
	a, err := app.New(ctx, &cfg, logger, app.Options{Channels: chs})
	if err != nil {
		l.Close()
		return err
	}
	d.svc = a.Handoffs // before the job workers start: they are what calls the simulated people
	creds, err := d.setUp(ctx, a, &cfg)
	if err == nil {
		err = a.StartJobs(context.WithoutCancel(ctx))
	}
	if err != nil {
		l.Close()
		err = errors.Join(err, a.Close(context.WithoutCancel(ctx)))
		if ctx.Err() != nil { // Ctrl-C while setting up
			d.out.printf("[demo] stopped before it was ready\n")
			return nil
		}
		return err
	}
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx, l) }()
	logger.Info("ony demo: Slack, Telegram, SMS and call providers are SIMULATED; nothing leaves this machine",
		"addr", cfg.Listen, "data_dir", dir)
	d.banner(&cfg, creds, o.Interval, kept, lg.path)

	agent, err := client.New(cfg.PublicURL, creds.token, nil)
	if err != nil {
		stopServe()
		return errors.Join(err, <-served)
	}
	runCtx, stopRun := runContext(ctx, o.Duration)
	defer stopRun()
	// The timeline is read as the admin: an agent's own view of an escalation leaves out who was
	// reached. Signing in checks a password hash, so it runs while the agent posts its first handoff.
	d.watchReady = make(chan struct{})
	go func() {
		defer close(d.watchReady)
		d.watch = d.signIn(runCtx, cfg.PublicURL, creds, agent)
	}()
	agentDone := make(chan bool, 1)
	go func() { agentDone <- d.runAgent(runCtx, agent, o.Interval, o.Count) }()
	var serveErr error
	select {
	case allFinal := <-agentDone:
		if allFinal {
			d.out.printf("[demo] all %d sample handoffs are final; stopping\n", o.Count)
		}
	case serveErr = <-served:
		stopRun()
		<-agentDone
		served = nil
	}
	if ctx.Err() != nil || runCtx.Err() != nil {
		d.out.printf("[demo] stopping\n")
	}
	stopRun()
	stopPeople()
	d.persons.stop()
	stopServe()
	if served != nil {
		serveErr = <-served
	} else {
		// Serve failed before it was asked to stop, so it did not close what app.New opened.
		serveErr = errors.Join(serveErr, a.Close(context.WithoutCancel(ctx)))
	}
	if serveErr != nil {
		return serveErr
	}
	if kept {
		d.out.printf("[demo] the demo's data stays in %s\n", dir)
	}
	if lg.path != "" {
		d.out.printf("[demo] the server's log is in %s\n", lg.path)
	}
	return nil
}

// demoLog is where the server's log goes.
type demoLog struct {
	logger *slog.Logger
	path   string // the log file; empty with --verbose
	close  func() error
}

// openLog sends the server's log to stderr with o.Verbose; otherwise to o.LogFile, or ony-demo.log in
// dir when dir is set, or a new file in the temporary directory — and its warnings to stderr too, so
// that trouble is not hidden in a file.
func openLog(o Options, dir string, stderr io.Writer) (demoLog, error) {
	lc := config.Default().Log
	if o.Verbose {
		return demoLog{logger: slog.New(logHandler{app.NewLogger(stderr, lc).Handler()}), close: func() error { return nil }}, nil
	}
	var f *os.File
	var err error
	switch {
	case o.LogFile != "":
		f, err = os.OpenFile(o.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	case dir != "":
		f, err = os.OpenFile(filepath.Join(dir, "ony-demo.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	default:
		f, err = os.CreateTemp("", "ony-demo-*.log")
	}
	if err != nil {
		return demoLog{}, fmt.Errorf("the demo's log file: %w", err)
	}
	warn := lc
	warn.Level = "warn"
	h := slog.NewMultiHandler(app.NewLogger(f, lc).Handler(), app.NewLogger(stderr, warn).Handler())
	return demoLog{logger: slog.New(logHandler{h}), path: f.Name(), close: f.Close}, nil
}

// handoffTimeout is how long a sample handoff waits for a person: the ladders end sooner, or leave it
// waiting in the console inbox until then.
func handoffTimeout(scale float64) time.Duration {
	return max(time.Duration(float64(2*time.Minute)*scale).Round(time.Second), time.Minute)
}

// runContext bounds the agent's run: by d (from now) when it is set, else only by ctx.
func runContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// publicURL is how the printed recipes reach the listener: a wildcard address becomes 127.0.0.1.
func publicURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ladderFiles returns the embedded ladder files with their waits scaled, each checked with
// escalation.Parse, and the ladders by name.
func ladderFiles(scale float64) (map[string][]byte, map[string]*escalation.Ladder, error) {
	entries, err := fs.ReadDir(ladderFS, "ladders")
	if err != nil {
		return nil, nil, err
	}
	files := map[string][]byte{}
	ladders := map[string]*escalation.Ladder{}
	for _, e := range entries {
		src, err := ladderFS.ReadFile("ladders/" + e.Name())
		if err != nil {
			return nil, nil, err
		}
		if src, err = scaleLadderWaits(src, scale); err != nil {
			return nil, nil, fmt.Errorf("demo ladder %s: %w", e.Name(), err)
		}
		ls, err := escalation.Parse(src, e.Name(), app.BuiltinKinds())
		if err != nil {
			return nil, nil, fmt.Errorf("demo ladder %s with --wait-scale %g:\n%w", e.Name(), scale, err)
		}
		for _, l := range ls {
			ladders[l.Name] = l
		}
		files[e.Name()] = src
	}
	return files, ladders, nil
}

// scaleLadderWaits multiplies every step's wait and redial gap by scale. A gap never goes below the
// format's minimum, and a step that redials waits long enough for its redials to be answered.
func scaleLadderWaits(src []byte, scale float64) ([]byte, error) {
	if scale == 1 {
		return src, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("not one YAML document")
	}
	scaled := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) * scale).Round(100 * time.Millisecond)
	}
	steps := yamlValue(doc.Content[0], "steps")
	if steps == nil || steps.Kind != yaml.SequenceNode {
		return src, nil
	}
	for _, st := range steps.Content {
		var floor time.Duration
		if r := yamlValue(st, "redial"); r != nil {
			if g := yamlValue(r, "gap"); g != nil {
				gap, err := time.ParseDuration(g.Value)
				if err != nil {
					return nil, fmt.Errorf("redial gap: %w", err)
				}
				gap = max(scaled(gap), redialGapMin)
				g.Value = gap.String()
				times := 1
				if t := yamlValue(r, "times"); t != nil {
					if times, err = strconv.Atoi(t.Value); err != nil {
						return nil, fmt.Errorf("redial times: %w", err)
					}
				}
				// The redials, plus room for the rung itself to start late (the job scheduler
				// ticks every few seconds, and more slowly on a loaded machine).
				floor = time.Duration(times)*gap + rungSlack
			}
		}
		if w := yamlValue(st, "wait"); w != nil {
			wait, err := time.ParseDuration(w.Value)
			if err != nil {
				return nil, fmt.Errorf("wait: %w", err)
			}
			w.Value = max(scaled(wait), floor).String()
		}
	}
	return yaml.Marshal(&doc)
}

// yamlValue is the value of key in mapping node m, or nil.
func yamlValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// session is one run of the demo.
type session struct {
	out     *printer
	log     *slog.Logger
	scale   float64
	ladders map[string]*escalation.Ladder
	timeout time.Duration // each sample handoff's
	// Written before the job workers start, read only after.
	svc    *handoff.Service
	names  map[string]string // user id → name
	people map[string]person // user id → the simulated person
	// persons are the simulated people pressing keys after they answer a call; auth are their
	// authenticator apps.
	persons spawner
	auth    *authenticators
	users   []store.User
	// watch reads the escalation timelines, signed in as the admin; set before watchReady closes.
	watch      *client.Client
	watchReady chan struct{}
}

// signIn returns a client signed in as the demo's admin, or the agent's client (whose view of an
// escalation names nobody) if that fails.
func (d *session) signIn(ctx context.Context, url string, b credentials, agent *client.Client) *client.Client {
	c, err := client.New(url, "", nil)
	if err == nil {
		_, err = c.Login(ctx, b.adminEmail, b.adminPassword)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("demo: cannot sign in as the admin; the timeline will not name people", "err", err)
		}
		return agent
	}
	return c
}

// printer serialises what the agent, the people and the banner print.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *printer) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, args...)
}

// spawner runs goroutines until it is stopped, then waits for them.
type spawner struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (s *spawner) goFunc(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *spawner) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

// logHandler leaves out the per-request "http" lines: the simulated agent polls twice a second,
// which would bury the escalation's own lines.
type logHandler struct{ slog.Handler }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "http" && r.Level < slog.LevelWarn {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(as)}
}
func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}

// channels are the simulated providers. Chat messages and texts are sent and never answered; a call
// rings out the first time and is picked up on the redial, and the person then decides.
func (d *session) channels(ctx context.Context, logger *slog.Logger) []channel.Channel {
	slackSim := simulated.New(slack.Kind.Name, "simulated", logger)
	telegramSim := simulated.New(telegram.Kind.Name, "simulated", logger)
	sms := simulated.New(voice.SMSKind.Name, "simulated", logger)
	call := simulated.New(voice.CallKind.Name, "simulated", logger)
	call.Behave = func(n channel.Notification) (channel.Delivery, error) {
		del := channel.Delivery{Ref: "sim-" + n.Key, State: store.SendNoAnswer}
		p, ok := d.people[n.Recipient.UserID]
		if !ok || n.Attempt == 0 {
			return del, nil
		}
		del.State = store.SendAnswered
		if n.Token != "" {
			d.persons.goFunc(func() { d.pressKey(ctx, p, n) })
		}
		return del, nil
	}
	return []channel.Channel{slackSim, telegramSim, sms, call}
}

// pressKey is a simulated person deciding on the phone's keypad, a moment after picking up: a critical
// change is refused, anything else approved.
func (d *session) pressKey(ctx context.Context, p person, n channel.Notification) {
	pause := max(time.Duration(float64(p.PickUp)*min(d.scale, 1)), p.PickUp/8)
	select {
	case <-ctx.Done():
		return
	case <-time.After(pause):
	}
	key, option := "1", "approve"
	if n.Risk == "critical" {
		key, option = "2", "deny"
	}
	ans := handoff.Answer{Token: n.Token, Option: option, Channel: voice.CallKind.Name,
		From: n.Recipient.Address, Contact: voice.Phone.Name} // the simulated person answers from the number called
	with := ""
	if n.StepUp && option == "approve" {
		ans.TOTP, _ = d.auth.code(n.Recipient.UserID)
		with = " and their authenticator code"
	}
	d.out.printf("[demo] %s (SIMULATED) picks up the redial about the %s and presses %s%s: %s\n", p.Name, n.Action, key, with, option)
	_, err := d.svc.DecideAnswer(ctx, ans)
	if pr, ok := problem.As(err); ok && pr.Kind == problem.Conflict {
		d.out.printf("[demo] %s (SIMULATED) was too late: the %s was already decided\n", p.Name, n.Action)
	} else if err != nil && ctx.Err() == nil {
		d.log.Warn("demo: the simulated decision failed", "person", p.Name, "handoff", n.HandoffID, "err", err)
	}
}

// credentials is what setting up the demo organization printed once.
type credentials struct {
	adminEmail, adminPassword, token string
}

// setUp creates the organization the way `ony serve` does on an empty database, then the people.
func (d *session) setUp(ctx context.Context, a *app.App, cfg *config.Config) (credentials, error) {
	sv := org.Service{Store: a.Store, Audit: a.Audit, Kinds: a.Escalation.Kinds()}
	o, dev, err := sv.Bootstrap(ctx, cfg.Bootstrap.OrgName, cfg.Bootstrap.AdminEmail)
	if err != nil {
		return credentials{}, fmt.Errorf("bootstrap: %w", err)
	}
	if o == nil {
		return credentials{}, fmt.Errorf("the data directory %s already holds an organization; the demo needs an empty one", cfg.DataDir)
	}
	by := audit.Actor{Kind: "system", ID: "demo"}
	users := make([]store.User, len(cast))
	errs := make([]error, len(cast))
	var wg sync.WaitGroup
	for i, p := range cast {
		wg.Go(func() { // each hashes a password: side by side is faster
			if _, err := sv.CreateUser(ctx, by, o.OrgID, org.NewUser{Email: p.Email, Name: p.Name, Role: p.Role}); err != nil {
				errs[i] = fmt.Errorf("demo person %s: %w", p.Name, err)
				return
			}
			groups := p.Groups
			users[i], errs[i] = sv.UpdateContact(ctx, by, o.OrgID, p.Email, org.Contact{Timezone: &p.Timezone, QuietHours: &p.QuietHours,
				Groups: &groups, Addresses: map[string]*string{voice.Phone.Name: &p.Phone, slack.Contact.Name: &p.SlackID, telegram.Contact.Name: &p.TelegramID}})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return credentials{}, err
	}
	d.names[o.AdminID] = "admin"
	for i, u := range users {
		d.names[u.ID] = u.Name
		d.people[u.ID] = cast[i]
		if err := d.auth.enrol(ctx, a.TOTP, o.OrgID, u.ID, u.Email); err != nil {
			return credentials{}, fmt.Errorf("demo person %s: totp: %w", u.Name, err)
		}
	}
	d.users = users
	return credentials{adminEmail: o.AdminEmail, adminPassword: o.AdminPassword, token: dev.Token}, nil
}

func (d *session) banner(cfg *config.Config, b credentials, interval time.Duration, kept bool, logPath string) {
	var s strings.Builder
	where := "deleted when the demo stops"
	if kept {
		where = "kept"
	}
	logLine := "on stderr (--verbose)"
	if logPath != "" {
		logLine = logPath + "   (--verbose prints it on stderr instead)"
	}
	fmt.Fprintf(&s, `
Ony demo: Slack, Telegram, SMS and phone calls are SIMULATED. Nothing leaves this machine, and the
people who answer are simulated too.

  Ony:             %s   (SQLite in %s, %s)
  Server log:      %s
  Admin email:     %s
  Admin password:  %s   (this demo's admin: sign in to the API with it)
  Agent token:     %s

  Simulated people (they ignore chat messages and texts, pick up the second call, and type their
  authenticator code on the keypad when approving needs one):
`, cfg.PublicURL, cfg.DataDir, where, logLine, b.adminEmail, b.adminPassword, b.token)
	for _, u := range d.users {
		fmt.Fprintf(&s, "    %-5s %s\n", u.Name, strings.TrimPrefix(org.DescribeUser(u, app.BuiltinKinds()), fmt.Sprintf("name %q, ", u.Name)))
	}
	scale := ""
	if d.scale != 1 {
		scale = fmt.Sprintf(", waits ×%g (redial gaps stay at least %s)", d.scale, redialGapMin)
	}
	fmt.Fprintf(&s, "\n  Ladders%s: when each rung fires, counted from the handoff's creation (each handoff has %s):\n",
		scale, escalation.FormatDuration(d.timeout))
	names := make([]string, 0, len(d.ladders))
	for n := range d.ladders {
		names = append(names, n)
	}
	slices.SortFunc(names, func(x, y string) int {
		lx, ly := d.ladders[x], d.ladders[y]
		if lx.Default != ly.Default {
			if lx.Default {
				return 1
			}
			return -1
		}
		return lx.Order - ly.Order
	})
	for _, n := range names {
		l := d.ladders[n]
		match := "every other handoff"
		if !l.Default {
			var parts []string
			if len(l.Match.Risk) > 0 {
				parts = append(parts, "risk "+strings.Join(l.Match.Risk, "/"))
			}
			for k, v := range l.Match.Labels {
				parts = append(parts, k+"="+v)
			}
			match = strings.Join(parts, ", ")
		}
		fmt.Fprintf(&s, "    %s (%s):\n", l.Name, match)
		for _, line := range d.plan(l) {
			fmt.Fprintf(&s, "      %s\n", line)
		}
	}
	fmt.Fprintf(&s, `  A rung can fire a few seconds after its time (the job runner picks up scheduled jobs every few
  seconds); the timeline below gives when each send really happened, and when it was due if later.

Decide a handoff yourself before the simulated people do (the agent prints each handoff's id):
  curl -s -c ony-demo.cookies -X POST %[1]s/v1/auth/login -H 'Content-Type: application/json' \
       -d '{"email":"%[2]s","password":"%[3]s"}'
  curl -s -b ony-demo.cookies -X POST %[1]s/v1/handoffs/$ID/decide -H 'Content-Type: application/json' \
       -d '{"option":"approve","comment":"looks fine"}'
  curl -s -b ony-demo.cookies %[1]s/v1/handoffs/$ID/escalation
(Writes signed in with the cookie must send Content-Type: application/json: that is Ony's CSRF guard.)

A simulated agent posts a sample handoff every %[4]s; the timeline follows. Press Ctrl-C to stop.

`, cfg.PublicURL, b.adminEmail, b.adminPassword, interval)
	d.out.printf("%s", s.String())
}

// plan lists what a ladder does to a handoff nobody decides, one line per event at the offsets the
// engine uses (escalation.Timeline): the rungs, the redials, and how it ends.
func (d *session) plan(l *escalation.Ladder) []string {
	var lines []string
	add := func(at time.Duration, what string) {
		lines = append(lines, "+"+escalation.FormatDuration(at)+" "+what)
	}
	for _, e := range escalation.Timeline(l, d.timeout, app.BuiltinKinds()) {
		switch e.Kind {
		case escalation.EventNotify:
			add(e.At, rungName(l, e.Step)+": "+strings.Join(e.Channels, "+"))
		case escalation.EventRedial:
			add(e.At, fmt.Sprintf("redial: %s (%s after an unanswered call)", strings.Join(e.Channels, "+"),
				escalation.FormatDuration(l.Steps[e.Step].Redial.Gap*time.Duration(e.Attempt))))
		case escalation.EventEnd:
			add(e.At, "the ladder ends: the handoff expires")
		case escalation.EventExpire:
			if l.End == escalation.EndWait && l.EndOffset() < e.At {
				add(l.EndOffset(), "no rungs left: it waits in the console inbox")
			}
			add(e.At, "its timeout: the handoff expires")
		}
	}
	return lines
}

// rungName is a step's name, or its number.
func rungName(l *escalation.Ladder, step int) string {
	if step >= 0 && step < len(l.Steps) && l.Steps[step].Name != "" {
		return l.Steps[step].Name
	}
	return fmt.Sprintf("rung %d", step+1)
}

// runAgent posts sample handoffs every interval and follows each one's escalation until it is final.
// It reports true when it stopped because all count handoffs were final.
func (d *session) runAgent(ctx context.Context, c *client.Client, interval time.Duration, count int) bool {
	var wg sync.WaitGroup
	for i := 0; count == 0 || i < count; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		if ctx.Err() != nil {
			break
		}
		req := samples[i%len(samples)]
		req.Timeout = d.timeout
		h, _, err := c.Create(ctx, req, client.NewIdempotencyKey())
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("demo agent: post a handoff", "err", err)
			}
			continue
		}
		seq := i + 1
		reasons := ""
		if len(h.RiskReasons) > 0 {
			reasons = " (" + strings.Join(h.RiskReasons, ", ") + ")"
		}
		d.out.printf("[demo] #%d the agent asks: %s %q → Ony rates it %s%s; id %s\n", seq, h.Action, h.Title, h.Risk, reasons, h.ID)
		wg.Go(func() {
			select {
			case <-d.watchReady:
				d.follow(ctx, d.watch, seq, h)
			case <-ctx.Done():
			}
		})
	}
	wg.Wait()
	return ctx.Err() == nil
}

// follow prints a handoff's escalation as it happens, then how it ended.
func (d *session) follow(ctx context.Context, c *client.Client, seq int, h0 *client.Handoff) {
	label := fmt.Sprintf("#%d %s (%s)", seq, h0.Action, h0.Risk)
	printed := map[string]string{}
	lastSeen, explained := false, false
	for {
		h, err := c.Get(ctx, h0.ID)
		if err == nil {
			var esc *client.Escalation
			if esc, err = c.Escalation(ctx, h0.ID); err == nil {
				for i, s := range esc.Sends {
					key := fmt.Sprintf("%d.%d.%s.%s.%d", s.Climb, s.Step, s.Channel, s.Target, s.Attempt)
					if !strings.Contains(s.Target, "-") && !strings.Contains(s.Target, ":") {
						key += fmt.Sprintf("#%d", i) // an unnamed target ("person"): tell them apart by position
					}
					if s.State == string(store.SendSending) || printed[key] == s.State {
						continue
					}
					first := printed[key] == ""
					printed[key] = s.State
					d.out.printf("%s", d.sendLine(label, h0.CreatedAt, esc.Ladder, s, first))
					lastSeen = lastSeen || d.lastRung(d.ladders[esc.Ladder], s)
				}
				if l := d.ladders[esc.Ladder]; lastSeen && !explained && !(h != nil && h.Final()) {
					explained = true
					d.out.printf("[demo] %s → ladder %s has no rungs left: from +%s the handoff waits in the console inbox until its timeout (+%s); "+
						"decide it yourself (the curl lines above) or it expires\n",
						label, l.Name, escalation.FormatDuration(l.EndOffset()), escalation.FormatDuration(d.timeout))
				}
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			d.log.Warn("demo agent: follow a handoff", "handoff", h0.ID, "err", err)
		case h.Final():
			d.out.printf("%s", d.outcomeLine(label, h))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// lastRung reports whether s belongs to the last rung of a ladder that, climbed, leaves the handoff
// waiting in the console inbox until its own timeout (end: wait) — which the timeline would otherwise
// pass over in silence.
func (d *session) lastRung(l *escalation.Ladder, s client.Send) bool {
	return l != nil && l.End == escalation.EndWait && s.Climb == l.Repeat && s.Step == len(l.Steps)-1 && l.EndOffset() < d.timeout
}

// sendLine is one notification, e.g.
// "[demo] #2 deploy (high) → ladder critical-production: +17s rung 3/3 (call): call → Ana (SIMULATED) no_answer".
// The first line of a rung's send that went out a second or more after the rung was due says when it
// was due. A redial follows its own call by the gap, so it is not held to the ladder's plan.
func (d *session) sendLine(label string, created time.Time, ladder string, s client.Send, first bool) string {
	at := max(s.UpdatedAt.Sub(created).Round(time.Second), 0)
	rung := fmt.Sprintf("rung %d", s.Step+1)
	if l := d.ladders[ladder]; l != nil && s.Step < len(l.Steps) {
		rung = fmt.Sprintf("rung %d/%d", s.Step+1, len(l.Steps))
		var notes []string
		if n := l.Steps[s.Step].Name; n != "" {
			notes = append(notes, n)
		}
		due := l.Offset(s.Climb, s.Step)
		if first && s.Attempt == 0 && s.UpdatedAt.Sub(created)-due >= time.Second {
			notes = append(notes, "due +"+escalation.FormatDuration(due))
		}
		if len(notes) > 0 {
			rung += " (" + strings.Join(notes, ", ") + ")"
		}
	}
	if s.Climb > 0 {
		rung += fmt.Sprintf(" climb %d", s.Climb+1)
	}
	who := s.Target
	if n, ok := d.names[s.Target]; ok {
		who = n
	} else if _, v, ok := strings.Cut(s.Target, ":"); ok {
		who = v
	}
	switch {
	case s.Provider == "simulated":
		who += " (SIMULATED)"
	case s.Channel == channel.ConsoleKind.Name:
		who += " (console inbox)"
	}
	state := s.State
	if s.Detail != "" {
		state += " (" + s.Detail + ")"
	}
	if s.Attempt > 0 {
		state += fmt.Sprintf(", redial %d", s.Attempt)
	}
	return fmt.Sprintf("[demo] %s → ladder %s: +%s %s: %s → %s %s\n", label, ladder, at, rung, s.Channel, who, state)
}

// outcomeLine says how a handoff ended, e.g. "[demo] #2 deploy (high) approved by Ana via call (+27s)".
func (d *session) outcomeLine(label string, h *client.Handoff) string {
	switch h.Status {
	case client.StatusApproved, client.StatusDenied:
		by, via, at := "someone", "?", time.Duration(0)
		if dec := h.Decision; dec != nil {
			if dec.By != nil && dec.By.Name != "" {
				by = dec.By.Name
			}
			via, at = dec.Channel, max(dec.DecidedAt.Sub(h.CreatedAt).Round(time.Second), 0)
		}
		return fmt.Sprintf("[demo] %s %s by %s via %s (+%s)\n", label, h.Status, by, via, at)
	case client.StatusExpired:
		return fmt.Sprintf("[demo] %s expired: nobody decided in time (never reported as a denial)\n", label)
	}
	return fmt.Sprintf("[demo] %s %s\n", label, h.Status)
}
