package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/internal/app"
)

// The banner states when each rung fires — the offsets the engine uses (escalation.Timeline), after
// --wait-scale and the redial minimum — and how each ladder ends, including a handoff left waiting in
// the console inbox until its timeout.
func TestBannerTimes(t *testing.T) {
	t.Parallel()
	for _, scale := range []float64{1, 0.2, 0.05} {
		_, ladders, err := ladderFiles(scale)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		d := &session{out: &printer{w: &out}, scale: scale, ladders: ladders, timeout: handoffTimeout(scale)}
		cfg := config.Default()
		d.banner(&cfg, credentials{adminEmail: "admin@localhost", adminPassword: "pw", token: "tok"}, time.Second, false, "/tmp/x.log")
		banner := out.String()
		missing := 0
		for _, name := range []string{"critical-production", "default"} {
			l := ladders[name]
			for _, e := range escalation.Timeline(l, d.timeout, app.BuiltinKinds()) {
				want := fmt.Sprintf("+%s ", escalation.FormatDuration(e.At))
				switch e.Kind {
				case escalation.EventNotify:
					want += l.Steps[e.Step].Name + ": " + strings.Join(e.Channels, "+")
				case escalation.EventRedial:
					want += "redial: " + strings.Join(e.Channels, "+")
				case escalation.EventEnd:
					want += "the ladder ends: the handoff expires"
				case escalation.EventExpire:
					want += "its timeout: the handoff expires"
				}
				if !strings.Contains(banner, want) {
					missing++
					t.Errorf("scale %g: ladder %s: the banner does not say %q", scale, name, want)
				}
			}
		}
		def := ladders["default"]
		if want := fmt.Sprintf("+%s no rungs left: it waits in the console inbox", escalation.FormatDuration(def.EndOffset())); !strings.Contains(banner, want) {
			missing++
			t.Errorf("scale %g: the banner does not say %q", scale, want)
		}
		if t.Failed() {
			t.Logf("scale %g: %d offsets missing from the banner:\n%s", scale, missing, banner)
		}
	}
}

// The timeline says when a late rung was due, and, when a low-risk handoff's ladder has no rungs
// left, that it waits in the console inbox until its own timeout.
func TestFollowExplains(t *testing.T) {
	t.Parallel()
	_, ladders, err := ladderFiles(0.2)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) string { return created.Add(d).Format(time.RFC3339Nano) }
	var mu sync.Mutex
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/h1/escalation"): // the default ladder, its last rung 4s late
			fmt.Fprintf(w, `{"ladder":"default","sends":[
				{"step":0,"channel":"console","target":"u1","provider":"builtin","state":"delivered","updated_at":%q},
				{"step":2,"channel":"sms","target":"u1","provider":"simulated","state":"sent","updated_at":%q}]}`, at(0), at(8*time.Second))
		case strings.HasSuffix(r.URL.Path, "/h1"):
			polls++
			status := "pending"
			if polls > 2 {
				status = "expired"
			}
			fmt.Fprintf(w, `{"id":"h1","status":%q,"action":"shell.exec","risk":"low","created_at":%q}`, status, at(0))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "ony_dev_test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &session{out: &printer{w: &out}, log: slog.New(slog.DiscardHandler), scale: 0.2, ladders: ladders,
		timeout: handoffTimeout(0.2), names: map[string]string{"u1": "Ana"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.follow(ctx, c, 1, &client.Handoff{ID: "h1", Action: "shell.exec", Risk: "low", CreatedAt: created})
	got := out.String()
	for _, want := range []string{
		"[demo] #1 shell.exec (low) → ladder default: +0s rung 1/3 (chat): console → Ana (console inbox) delivered\n",
		"[demo] #1 shell.exec (low) → ladder default: +8s rung 3/3 (text, due +4s): sms → Ana (SIMULATED) sent\n",
		"[demo] #1 shell.exec (low) → ladder default has no rungs left: from +7s the handoff waits in the console inbox until its timeout (+1m); decide it yourself (the curl lines above) or it expires\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the timeline lacks %q:\n%s", want, got)
		}
	}
}

// By default the server's log goes to a file, with warnings also on stderr; --verbose puts it all
// on stderr. Either way the timeline on stdout carries no log line.
func TestDemoLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var stderr bytes.Buffer
	l, err := openLog(Options{}, dir, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.logger.Info("routine", "k", 1)
	l.logger.Warn("trouble", "k", 2)
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	if l.path != filepath.Join(dir, "ony-demo.log") {
		t.Errorf("log file %s, want ony-demo.log in the data directory", l.path)
	}
	data, err := os.ReadFile(l.path)
	if err != nil || !strings.Contains(string(data), "msg=routine") || !strings.Contains(string(data), "msg=trouble") {
		t.Errorf("the log file holds %q (%v), want both lines", data, err)
	}
	if s := stderr.String(); strings.Contains(s, "routine") || !strings.Contains(s, "msg=trouble") {
		t.Errorf("stderr %q: want the warning only", s)
	}

	stderr.Reset()
	l, err = openLog(Options{Verbose: true}, dir, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	l.logger.Info("routine")
	_ = l.close()
	if l.path != "" || !strings.Contains(stderr.String(), "msg=routine") {
		t.Errorf("--verbose: path %q, stderr %q; want the log on stderr", l.path, stderr.String())
	}
	_ = io.Discard
}
