// Package browsertest drives a headless Chromium for end-to-end tests of the console, and records
// every console error, uncaught exception, CSP violation and failed request so a test can demand a clean page.
//
// Import it from _test files only:
//
//	func TestSignIn(t *testing.T) {
//		t.Parallel()
//		srv := httptest.NewServer(handler) // the real server, console mounted
//		b := browsertest.Start(t)          // skips without Chromium; fails under CI=true
//		b.CheckCleanAtEnd()                // every page visited must be clean
//		b.Navigate(srv.URL + "/console/login")
//		b.SetValue("#email", "ada@example.com")
//		b.SetValue("#password", pw)
//		b.ClickAndWait("button[type=submit]")
//		b.WaitVisible("#inbox")
//		if c, ok := b.Cookie("ony_session"); !ok || !c.HTTPOnly || c.SameSite != "Lax" { ... }
//		b.DocScreenshot("inbox") // docs/screenshots/inbox.png with ONY_UPDATE_SCREENSHOTS=1
//	}
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// EnvChromium names the browser binary to use instead of searching the usual places.
const EnvChromium = "ONY_TEST_CHROMIUM"

// DefaultTimeout bounds one action. It is generous on purpose: CI runs the whole suite under -race on
// two cores, and a browser test must never fail for being slow.
const DefaultTimeout = 30 * time.Second

// Problem is one thing that makes a page unclean.
type Problem struct {
	Kind string // "console", "exception", "log", "network", "http"
	Text string
	URL  string
}

func (p Problem) String() string {
	if p.URL == "" {
		return p.Kind + ": " + p.Text
	}
	return p.Kind + ": " + p.Text + " (" + p.URL + ")"
}

// Cookie is a cookie as the browser stores it.
type Cookie struct {
	Name, Value, Domain, Path string
	HTTPOnly, Secure          bool
	SameSite                  string // "Strict", "Lax", "None" or "" when the server set none
	Session                   bool   // no Expires/Max-Age
	Expires                   time.Time
}

// Browser is one test's tab in a browser context of its own (nothing, cookies included, is shared
// with another test). Every method fails the test on error; none is safe for concurrent use.
type Browser struct {
	// Timeout bounds each action; DefaultTimeout unless changed.
	Timeout time.Duration

	t   testing.TB
	ctx context.Context // the tab

	mu       sync.Mutex
	problems []Problem
	allowed  []*regexp.Regexp
	requests map[network.RequestID]string // URL of each request, to name the ones that fail
	close    func()
}

// Close closes the tab and its browser context now rather than when the test ends; the Browser is
// unusable afterwards.
func (b *Browser) Close() { b.close() }

// Chromium returns the browser binary: $ONY_TEST_CHROMIUM, else /usr/bin/chromium, else chromium,
// chromium-browser or google-chrome on PATH.
func Chromium() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvChromium, p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium, chromium-browser or google-chrome found (install Debian's chromium or set " + EnvChromium + ")")
}

// Start opens a tab for this test in a browser context of its own (like a fresh incognito window: no
// cookies, storage or cache shared with any other test) and closes it when the test ends. The tabs of
// tests that overlap share one headless Chromium process, which stops when its last tab closes; a
// browser start costs seconds on a loaded machine, a browser context milliseconds. Without a browser
// the test skips, or fails under CI=true (CI installs chromium, so a missing one is a broken setup).
func Start(t testing.TB) *Browser {
	t.Helper()
	bin, err := Chromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browsertest: %v; CI=true requires it", err)
		}
		t.Skipf("browsertest: skipping: %v", err)
	}
	root, err := acquire(bin)
	if err != nil {
		t.Fatalf("browsertest: start %s: %v", bin, err)
	}
	b := &Browser{Timeout: DefaultTimeout, t: t, requests: map[network.RequestID]string{}}
	// The listener is added before the tab enables any domain, so nothing the first page does is missed.
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.record))
	b.close = sync.OnceFunc(func() {
		cancel() // closes the tab and disposes of its browser context
		release()
	})
	t.Cleanup(b.close)
	// The first Run creates the tab and binds it to ctx, which must carry no timeout.
	if err := withinTime(ctx, cancel, func() error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("browsertest: open a tab: %v", err)
	}
	b.ctx = ctx
	return b
}

// withinTime runs the first Run of a chromedp context, which must not carry a deadline, and cancels
// the context when it takes unreasonably long instead.
func withinTime(ctx context.Context, cancel func(), run func() error) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
		case <-time.After(2 * DefaultTimeout):
			cancel()
		}
	}()
	return run()
}

// shared is the browser process the tabs of overlapping tests use.
var shared struct {
	mu    sync.Mutex
	users int
	ctx   context.Context // the browser's first tab; its children are the tests' tabs
	stop  func()
}

func acquire(bin string) (context.Context, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.ctx != nil && shared.ctx.Err() == nil {
		shared.users++
		return shared.ctx, nil
	}
	if shared.stop != nil { // the browser went away under its tabs
		shared.stop()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI; Chromium's sandbox refuses root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// Without a user-data-dir flag chromedp makes a fresh profile of its own and removes it after
		// killing any helper process still writing there, which a t.TempDir removal cannot do.
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("disable-component-update", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() {
		cancel()
		cancelAlloc()
	}
	if err := withinTime(ctx, cancel, func() error { return chromedp.Do(ctx) }); err != nil {
		stop()
		shared.ctx, shared.stop, shared.users = nil, nil, 0
		return nil, err
	}
	shared.ctx, shared.stop, shared.users = ctx, stop, 1
	return ctx, nil
}

// release stops the browser when its last tab closed, so no process or profile outlives the tests.
func release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.users--
	if shared.users == 0 && shared.stop != nil {
		shared.stop()
		shared.ctx, shared.stop = nil, nil
	}
}

// record runs on the tab's reader goroutine for every event: it must be quick and must not call the
// browser.
func (b *Browser) record(ev any) {
	var p Problem
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		switch e.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
		default:
			return
		}
		p = Problem{Kind: "console", Text: string(e.Type) + ": " + argsText(e.Args)}
		if e.StackTrace != nil && len(e.StackTrace.CallFrames) > 0 {
			p.URL = e.StackTrace.CallFrames[0].URL
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			desc, _, _ := strings.Cut(d.Exception.Description, "\n")
			text += " " + desc
		}
		p = Problem{Kind: "exception", Text: text, URL: d.URL}
	case *log.EventEntryAdded:
		en := e.Entry
		if en.Level != log.EntryLevelError && en.Level != log.EntryLevelWarning {
			return
		}
		// CSP violations arrive here with source "security", failed subresources with "network".
		p = Problem{Kind: "log", Text: string(en.Source) + " " + string(en.Level) + ": " + en.Text, URL: en.URL}
	case *network.EventRequestWillBeSent:
		b.mu.Lock()
		b.requests[e.RequestID] = e.Request.URL
		b.mu.Unlock()
		return
	case *network.EventResponseReceived:
		if e.Response == nil || e.Response.Status < 400 {
			return
		}
		p = Problem{Kind: "http", Text: fmt.Sprintf("%d %s", e.Response.Status, e.Response.StatusText), URL: e.Response.URL}
	case *network.EventLoadingFailed:
		// A request cancelled because the page moved on is not a failure of the page.
		if e.Canceled && e.BlockedReason == "" {
			return
		}
		text := e.ErrorText
		if e.BlockedReason != "" {
			text += " (blocked: " + string(e.BlockedReason) + ")"
		}
		b.mu.Lock()
		url := b.requests[e.RequestID]
		b.mu.Unlock()
		p = Problem{Kind: "network", Text: "failed: " + text, URL: url}
	default:
		return
	}
	b.mu.Lock()
	b.problems = append(b.problems, p)
	b.mu.Unlock()
}

func argsText(args []*runtime.RemoteObject) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		switch {
		case a == nil:
		case a.Type == runtime.RemoteObjectTypeString:
			var s string
			if err := json.Unmarshal(a.Value, &s); err == nil {
				parts = append(parts, s)
				continue
			}
			parts = append(parts, string(a.Value))
		case a.Description != "":
			parts = append(parts, a.Description)
		case len(a.Value) > 0:
			parts = append(parts, string(a.Value))
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}

// Allow ignores every problem whose String matches the regular expression, for a page that is meant
// to produce it (a test that visits a 404 on purpose). Keep patterns narrow.
func (b *Browser) Allow(pattern string) {
	b.t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		b.t.Fatalf("browsertest: Allow(%q): %v", pattern, err)
	}
	b.mu.Lock()
	b.allowed = append(b.allowed, re)
	b.mu.Unlock()
}

// Problems returns what was recorded so far and not allowed.
func (b *Browser) Problems() []Problem {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Problem
	for _, p := range b.problems {
		allowed := false
		for _, re := range b.allowed {
			if re.MatchString(p.String()) {
				allowed = true
				break
			}
		}
		if !allowed {
			out = append(out, p)
		}
	}
	return out
}

// ClearProblems forgets what was recorded so far.
func (b *Browser) ClearProblems() {
	b.mu.Lock()
	b.problems = nil
	b.mu.Unlock()
}

// CheckClean fails the test, listing each one, when any console error or warning, uncaught exception,
// CSP violation, failed request or HTTP error response was recorded since Start (or ClearProblems).
// Events arrive asynchronously; call it after the last action has waited for what it needs.
func (b *Browser) CheckClean(t testing.TB) {
	t.Helper()
	if b.ctx.Err() != nil { // closed: everything it will ever report is in
		b.report(t)
		return
	}
	// The listener sees events in the order the browser sent them, so after one round trip every
	// event sent before it is recorded; the pause lets late console output of the page arrive too.
	b.run("settle", chromedp.Steps(chromedp.Sleep(100*time.Millisecond),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[int]("0")(ctx, t)
			return err
		})))
	b.report(t)
}

func (b *Browser) report(t testing.TB) {
	t.Helper()
	if ps := b.Problems(); len(ps) > 0 {
		var sb strings.Builder
		for _, p := range ps {
			sb.WriteString("\n\t" + p.String())
		}
		t.Errorf("browsertest: page is not clean (%d problems):%s", len(ps), sb.String())
	}
}

// Context returns the tab's chromedp context for what the helpers do not cover; derive a timeout
// from it per action (never cancel it).
func (b *Browser) Context() context.Context { return b.ctx }

// Run runs chromedp actions on the tab with the per-action timeout.
func (b *Browser) Run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.run("run", chromedp.Steps(actions...))
}

func (b *Browser) run(what string, a chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := runT(b, a); err != nil {
		b.t.Fatalf("browsertest: %s: %v", what, err)
	}
}

func runT[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// Navigate opens url in the tab and waits for its load event.
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.run("navigate to "+url, chromedp.Navigate(url))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (b *Browser) WaitVisible(sel string) {
	b.t.Helper()
	b.run("wait visible "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitNotPresent waits until no element matches the CSS selector.
func (b *Browser) WaitNotPresent(sel string) {
	b.t.Helper()
	b.run("wait not present "+sel, chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// Click clicks the first visible element matching the CSS selector, as a person would (mouse events
// at its centre). It does not wait for a navigation; use ClickAndWait for a link or submit button.
func (b *Browser) Click(sel string) {
	b.t.Helper()
	b.run("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// ClickAndWait clicks like Click and waits for the page it leads to to load.
func (b *Browser) ClickAndWait(sel string) {
	b.t.Helper()
	_, err := runT(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	if err != nil {
		b.t.Fatalf("browsertest: click %s and wait for load: %v", sel, err)
	}
}

// SubmitAndWait submits the form that the CSS selector matches (or the form of the matched field) and
// waits for the resulting page to load.
func (b *Browser) SubmitAndWait(sel string) {
	b.t.Helper()
	_, err := runT(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Submit(chromedp.CSS(sel))))
	if err != nil {
		b.t.Fatalf("browsertest: submit %s and wait for load: %v", sel, err)
	}
}

// SetValue sets the value of the input matching the CSS selector directly, replacing what it held.
func (b *Browser) SetValue(sel, value string) {
	b.t.Helper()
	b.run("set value of "+sel, chromedp.SetValue(chromedp.CSS(sel), value))
}

// SendKeys types text into the visible element matching the CSS selector, key by key, after what it
// holds.
func (b *Browser) SendKeys(sel, text string) {
	b.t.Helper()
	b.run("send keys to "+sel, chromedp.SendKeys(chromedp.CSS(sel), text))
}

// Text returns the visible text of the first element matching the CSS selector, once it exists.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := runT(b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browsertest: text of %s: %v", sel, err)
	}
	return s
}

// Value returns the current value of the input matching the CSS selector.
func (b *Browser) Value(sel string) string {
	b.t.Helper()
	s, err := runT(b, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browsertest: value of %s: %v", sel, err)
	}
	return s
}

// Count returns how many elements match the CSS selector now, without waiting.
func (b *Browser) Count(sel string) int {
	b.t.Helper()
	n, err := runT(b, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%s).length", jsString(sel))))
	if err != nil {
		b.t.Fatalf("browsertest: count %s: %v", sel, err)
	}
	return n
}

// Eval evaluates a JavaScript expression in the page and returns its value as a string (via String()).
func (b *Browser) Eval(expr string) string {
	b.t.Helper()
	s, err := runT(b, chromedp.Evaluate[string]("String("+expr+")"))
	if err != nil {
		b.t.Fatalf("browsertest: eval %s: %v", expr, err)
	}
	return s
}

// CurrentURL returns the URL of the page in the tab.
func (b *Browser) CurrentURL() string {
	b.t.Helper()
	u, err := runT(b, chromedp.Location())
	if err != nil {
		b.t.Fatalf("browsertest: location: %v", err)
	}
	return u
}

// Title returns the document title.
func (b *Browser) Title() string {
	b.t.Helper()
	s, err := runT(b, chromedp.Title())
	if err != nil {
		b.t.Fatalf("browsertest: title: %v", err)
	}
	return s
}

// Cookies returns the cookies the browser would send to the current page, HttpOnly ones included.
func (b *Browser) Cookies() []Cookie {
	b.t.Helper()
	res, err := runT(b, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{})
	})
	if err != nil {
		b.t.Fatalf("browsertest: cookies: %v", err)
	}
	out := make([]Cookie, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		ck := Cookie{Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path, HTTPOnly: c.HTTPOnly,
			Secure: c.Secure, SameSite: string(c.SameSite), Session: c.Session}
		if !c.Session && c.Expires > 0 {
			ck.Expires = time.Unix(int64(c.Expires), 0)
		}
		out = append(out, ck)
	}
	return out
}

// Cookie returns the named cookie of the current page, and whether there is one.
func (b *Browser) Cookie(name string) (Cookie, bool) {
	b.t.Helper()
	for _, c := range b.Cookies() {
		if c.Name == name {
			return c, true
		}
	}
	return Cookie{}, false
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path, creating its directory.
func (b *Browser) Screenshot(path string) {
	b.t.Helper()
	buf, err := runT(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browsertest: screenshot: %v", err)
	}
	if _, err := png.DecodeConfig(bytes.NewReader(buf)); err != nil {
		b.t.Fatalf("browsertest: screenshot is not a PNG: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Fatalf("browsertest: screenshot: %v", err)
	}
}

// jsString quotes s as a JavaScript string literal (JSON is a subset).
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// CheckCleanAtEnd runs CheckClean when the test ends (before the browser stops), so a test that visits
// many pages asserts all of them with one line.
func (b *Browser) CheckCleanAtEnd() {
	b.t.Cleanup(func() { b.CheckClean(b.t) })
}

// WaitText waits until the text of the first element matching the CSS selector contains want, across
// navigations and script updates, and returns that text.
func (b *Browser) WaitText(sel, want string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.Timeout)
	defer cancel()
	expr := fmt.Sprintf("(() => { const e = document.querySelector(%s); return e ? e.innerText : null })()", jsString(sel))
	var last string
	var lastErr error
	for {
		// A page between two documents cannot evaluate; that is a reason to retry, not to fail.
		s, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		lastErr = err
		if err == nil && s != nil {
			last = *s
			if strings.Contains(last, want) {
				return last
			}
		}
		select {
		case <-ctx.Done():
			b.t.Fatalf("browsertest: %s never contained %q (last text %q, last error %v)", sel, want, last, lastErr)
			return ""
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// HTML returns the outer HTML of the whole document, for a failure message.
func (b *Browser) HTML() string {
	b.t.Helper()
	s, err := runT(b, chromedp.Evaluate[string]("document.documentElement.outerHTML"))
	if err != nil {
		b.t.Fatalf("browsertest: html: %v", err)
	}
	return s
}

// EnvUpdateScreenshots, set to 1, makes DocScreenshot write into the repository's docs/screenshots.
const EnvUpdateScreenshots = "ONY_UPDATE_SCREENSHOTS"

// DocScreenshot takes a full-page screenshot for the documentation: docs/screenshots/<name>.png in the
// repository when ONY_UPDATE_SCREENSHOTS=1, else a file in the test's temporary directory (so the code
// path still runs, but an ordinary test run leaves the work tree alone). It returns the path written.
func (b *Browser) DocScreenshot(name string) string {
	b.t.Helper()
	dir := b.t.TempDir()
	if os.Getenv(EnvUpdateScreenshots) == "1" {
		root, err := repoRoot()
		if err != nil {
			b.t.Fatalf("browsertest: %v", err)
		}
		dir = filepath.Join(root, "docs", "screenshots")
	}
	path := filepath.Join(dir, name+".png")
	b.Screenshot(path)
	return path
}

// repoRoot finds the module root (the directory holding go.mod) from the test's working directory,
// which go test sets to the package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
