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
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/voice"
)

// TestAgentCount checks --count against a stand-in server: the agent posts that many handoffs,
// follows each until it is final, and then reports that it is done (the demo then stops by itself).
func TestAgentCount(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	created, polled := 0, map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		const now, later = "2026-01-02T03:04:05Z", "2026-01-02T03:04:08Z"
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/handoffs":
			created++
			fmt.Fprintf(w, `{"id":"h%d","status":"pending","action":"deploy","risk":"high","created_at":%q}`, created, now)
		case strings.HasSuffix(r.URL.Path, "/escalation"):
			fmt.Fprintf(w, `{"ladder":"critical-production","sends":[{"step":0,"channel":"slack","target":"u1","provider":"simulated","state":"sent","updated_at":%q}]}`, now)
		case r.Method == http.MethodGet:
			id := strings.TrimPrefix(r.URL.Path, "/v1/handoffs/")
			polled[id]++
			status, dec := "pending", "null"
			if polled[id] > 1 {
				status, dec = "approved", fmt.Sprintf(`{"option":"approve","approved":true,"by":{"kind":"user","name":"Ana"},"channel":"call","decided_at":%q}`, later)
			}
			fmt.Fprintf(w, `{"id":%q,"status":%q,"action":"deploy","risk":"high","created_at":%q,"decision":%s}`, id, status, now, dec)
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
	d := &session{out: &printer{w: &out}, log: slog.New(slog.NewTextHandler(io.Discard, nil)), scale: 1,
		ladders: map[string]*escalation.Ladder{}, names: map[string]string{"u1": "Ana"}, watch: c, watchReady: make(chan struct{})}
	close(d.watchReady)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan bool, 1)
	go func() { done <- d.runAgent(ctx, c, 100*time.Millisecond, 2) }()
	select {
	case allFinal := <-done:
		if !allFinal {
			t.Fatalf("the agent stopped before its handoffs were final:\n%s", out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the agent did not stop after --count handoffs were final")
	}
	mu.Lock()
	defer mu.Unlock()
	if created != 2 {
		t.Errorf("the agent posted %d handoffs, want 2", created)
	}
	for _, want := range []string{"[demo] #1 the agent asks: deploy", "[demo] #2 the agent asks: deploy",
		"[demo] #1 deploy (high) → ladder critical-production: +0s rung 1: slack → Ana (SIMULATED) sent\n",
		"[demo] #2 deploy (high) approved by Ana via call (+3s)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the agent's output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCheck checks the options Run refuses, worded by the flags of `ony demo`, and that an earlier
// run's data directory is refused rather than reused (its one-time secrets are gone).
func TestCheck(t *testing.T) {
	t.Parallel()
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "ony.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ok := Options{Listen: "127.0.0.1:0", Interval: time.Second, WaitScale: 1}
	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string // empty: accepted
	}{
		{"defaults", func(*Options) {}, ""},
		{"an empty data directory", func(o *Options) { o.DataDir = t.TempDir() }, ""},
		{"a data directory not there yet", func(o *Options) { o.DataDir = filepath.Join(t.TempDir(), "new") }, ""},
		{"the fastest ladders", func(o *Options) { o.WaitScale, o.Interval = 0.01, 100*time.Millisecond }, ""},
		{"scale 0", func(o *Options) { o.WaitScale = 0 }, "--wait-scale must be between 0.01 and 10"},
		{"scale 11", func(o *Options) { o.WaitScale = 11 }, "--wait-scale must be between 0.01 and 10"},
		{"interval 10ms", func(o *Options) { o.Interval = 10 * time.Millisecond }, "--interval must be at least 100ms"},
		{"count -1", func(o *Options) { o.Count = -1 }, "--count must be"},
		{"duration -1s", func(o *Options) { o.Duration = -time.Second }, "--duration must be"},
		{"a used data directory", func(o *Options) { o.DataDir = used }, "holds the database of an earlier run"},
	} {
		o := ok
		tt.edit(&o)
		err := o.Check()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v, want no error", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
		if tt.want != "" {
			// Run refuses what Check refuses, before it opens anything.
			if rerr := Run(context.Background(), o, io.Discard, io.Discard); rerr == nil || rerr.Error() != err.Error() {
				t.Errorf("%s: Run returned %v, want Check's error", tt.name, rerr)
			}
		}
	}
}

// TestLadders checks the embedded ladders at every speed the flag allows: each parses, waits
// scale, and a redialling step still outlasts its redials.
func TestLadders(t *testing.T) {
	t.Parallel()
	for _, scale := range []float64{1, 0.5, 0.05, 0.01, 3, 10} {
		files, ladders, err := ladderFiles(scale)
		if err != nil {
			t.Fatalf("scale %g: %v", scale, err)
		}
		if len(files) != 2 || ladders["default"] == nil || ladders["critical-production"] == nil {
			t.Fatalf("scale %g: ladders %v, want default and critical-production", scale, ladders)
		}
		crit := ladders["critical-production"]
		if got := crit.Steps[0].Wait; got != time.Duration(float64(8*time.Second)*scale).Round(100*time.Millisecond) {
			t.Errorf("scale %g: the first rung waits %s", scale, got)
		}
		call := crit.Steps[len(crit.Steps)-1]
		if call.Redial.Times != 1 || call.Redial.Gap < 10*time.Second || call.Wait < time.Duration(call.Redial.Times)*call.Redial.Gap+30*time.Second {
			t.Errorf("scale %g: the call rung is %+v", scale, call)
		}
		for name, want := range map[string]string{
			"default":             "console+slack telegram sms",
			"critical-production": "slack+telegram sms call",
		} {
			var got []string
			for _, st := range ladders[name].Steps {
				got = append(got, strings.Join(st.Channels, "+"))
			}
			if strings.Join(got, " ") != want {
				t.Errorf("scale %g: ladder %s climbs %v, want %s", scale, name, got, want)
			}
		}
		if crit.Steps[len(crit.Steps)-1].Channels[0] != voice.CallKind.Name {
			t.Errorf("scale %g: the critical ladder does not end with calls", scale)
		}
	}
}
