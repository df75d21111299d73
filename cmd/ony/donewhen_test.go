package main

// Issue 13's "done when", as a newcomer does it: the README's quick start, then the console in a real
// browser — sign in with the printed password, enrol TOTP, open the handoff an agent posted from the
// link the API gave, read its payload and approve it with step-up — and the agent's wait returns
// approved. Every page must be clean (no console error, CSP violation or failed request).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/internal/browsertest"
	"github.com/ony-ai/ony/internal/testhttp"
)

// reConsoleURL finds the console's address in the first-start banner: the first URL of the console
// it prints, whatever words surround it.
var reConsoleURL = regexp.MustCompile(`https?://[^\s'"]+/console/?[^\s'")]*`)

func TestDoneWhenNewcomerApprovesInConsole(t *testing.T) {
	t.Parallel()
	start := time.Now()
	t.Cleanup(func() { t.Logf("took %s", time.Since(start).Round(100*time.Millisecond)) })

	// The quick start: `ony serve` with no configuration on a fresh data directory.
	srv := startServe(t, map[string]string{"ONY_DATA_DIR": t.TempDir()})
	srv.waitReady()
	out := srv.Stdout()
	boot := parseBootstrap(t, out)
	consoleURL := reConsoleURL.FindString(out)
	if consoleURL != srv.URL+"/console/" {
		t.Fatalf("the banner's console URL is %q, want %s/console/:\n%s", consoleURL, srv.URL, out)
	}

	b := browsertest.Start(t)
	b.Timeout = 90 * time.Second // sign-in hashes the password: seconds under -race on a loaded machine
	b.CheckCleanAtEnd()

	// Open the printed console URL and sign in with the printed password.
	b.Navigate(consoleURL)
	b.WaitVisible("input[name=email]")
	b.SetValue("input[name=email]", boot.Email)
	b.SetValue("input[name=password]", boot.Password)
	b.ClickAndWait("main button[type=submit]")
	b.WaitText("main h1", "Inbox")

	// Enrol TOTP on the profile page; the authenticator app is totp.GenerateCode on the shown secret.
	b.ClickAndWait(`header a[href="/console/profile"]`)
	b.ClickAndWait(`form[action="/console/profile/totp/begin"] button`)
	app := &browsertest.Authenticator{Secret: strings.TrimSpace(b.Text("#totp-secret"))}
	if len(app.Secret) < 16 {
		t.Fatalf("TOTP secret on the page: %q", app.Secret)
	}
	b.SetValue(`form[action="/console/profile/totp/confirm"] input[name=totp]`, app.Code(t))
	b.ClickAndWait(`form[action="/console/profile/totp/confirm"] button`)
	b.WaitText("main p.notice", "TOTP is on.")

	// The agent (plain HTTP with the printed token) asks about a high-risk change with a diff, then
	// waits on the wait endpoint as the quick start shows.
	diff := "diff --git a/deploy.yaml b/deploy.yaml\n--- a/deploy.yaml\n+++ b/deploy.yaml\n" +
		"@@ -1,2 +1,2 @@\n-image: shop:1.41\n+image: shop:1.42\n replicas: 3\n"
	body, _ := json.Marshal(map[string]any{"action": "deploy.apply", "title": "Ship shop 1.42 to production",
		"labels": map[string]string{"env": "prod"}, "payload": map[string]string{"kind": "diff", "content": diff}})
	var created struct {
		ID, Status, Risk string
		ConsoleURL       string `json:"console_url"`
	}
	agentDo(t, "POST", srv.URL+"/v1/handoffs", boot.Token, string(body), 201, &created)
	if created.Risk != "high" || created.Status != "pending" || created.ConsoleURL == "" {
		t.Fatalf("created %+v, want a pending high-risk handoff with a console_url", created)
	}
	type waited struct {
		Status string
		err    error
	}
	waitc := make(chan waited, 1)
	go func() {
		// Long-polls of 60 s, as the banner's example; pending answers mean "ask again".
		for {
			var h struct{ Status string }
			err := agentTry("GET", srv.URL+"/v1/handoffs/"+created.ID+"/wait?timeout=60s", boot.Token, "", &h)
			if err != nil || h.Status != "pending" {
				waitc <- waited{h.Status, err}
				return
			}
		}
	}()

	// Open the link the agent was given; the payload is there to read.
	b.Navigate(created.ConsoleURL)
	b.WaitText("main h1", "Ship shop 1.42 to production")
	if got := b.Text("pre.payload .ln.add"); got != "+image: shop:1.42" {
		t.Errorf("added line %q", got)
	}
	if got := b.Text("pre.payload .ln.del"); got != "-image: shop:1.41" {
		t.Errorf("removed line %q", got)
	}
	select {
	case w := <-waitc:
		t.Fatalf("the agent's wait returned before any decision: %+v", w)
	default:
	}

	// Approve with step-up: the next code from the authenticator.
	b.WaitVisible("form.decide input[name=totp]")
	b.SetValue("form.decide input[name=totp]", app.Code(t))
	b.ClickAndWait(`form.decide button[value="approve"]`)
	b.WaitText("dl.decision", "approved")
	select {
	case w := <-waitc:
		if w.err != nil || w.Status != "approved" {
			t.Fatalf("the agent's wait returned %q, %v; want approved", w.Status, w.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent's wait did not return within 30 s of the approval")
	}
	b.Close()
	srv.stop()
	mustNotContain(t, "the server log", srv.Stderr(), boot.Password, boot.Token, app.Secret, "shop:1.42")
}

// agentDo is one agent request with the bearer token; it fails the test unless the status is want.
func agentDo(t *testing.T, method, url, token, body string, want int, out any) {
	t.Helper()
	if err := agentCall(method, url, token, body, want, out); err != nil {
		t.Fatal(err)
	}
}

func agentTry(method, url, token, body string, out any) error {
	return agentCall(method, url, token, body, 200, out)
}

func agentCall(method, url, token, body string, want int, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := testhttp.Client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d: %s", method, url, res.StatusCode, want, data)
	}
	return json.Unmarshal(data, out)
}
