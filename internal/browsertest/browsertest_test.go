package browsertest

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeT records failures instead of ending the test, so the tests can prove CheckClean fails.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

const strictCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// site is a tiny site with one clean page and one page per kind of problem.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", strictCSP)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title>`+
				`<link rel="stylesheet" href="/static/site.css"></head><body>%s</body></html>`, body)
		}
	}
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /static/site.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css")
		fmt.Fprint(w, "body{font-family:sans-serif;margin:2em} .tall{height:1500px}")
	})
	mux.HandleFunc("GET /static/counter.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `document.getElementById("inc").addEventListener("click", () => {
  const out = document.getElementById("count");
  out.textContent = String(Number(out.textContent) + 1);
});`)
	})
	mux.HandleFunc("GET /static/throws.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `throw new Error("boom from throws.js");`)
	})
	mux.HandleFunc("GET /static/logs.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `console.log("fine"); console.error("bad thing happened");`)
	})
	mux.HandleFunc("GET /static/broken.js", func(w http.ResponseWriter, r *http.Request) {
		// Drop the connection without an answer: the browser sees a network error, not a status.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	mux.Handle("GET /broken", page(`<h1 id="title">Broken</h1><script src="/static/broken.js"></script>`))
	mux.Handle("GET /inline-style", page(`<h1 id="title" style="color:red">Styled</h1>`))
	mux.Handle("GET /inline-handler", page(`<h1 id="title">Handler</h1><img src="/static/nope.png" alt="" onerror="document.title='x'">`))
	mux.Handle("GET /{$}", page(`<h1 id="title">Hello</h1><p class="tall">clean</p>`))
	mux.Handle("GET /inline", page(`<h1 id="title">Inline</h1><script>document.title = "ran";</script>`))
	mux.Handle("GET /throws", page(`<h1 id="title">Throws</h1><script src="/static/throws.js"></script>`))
	mux.Handle("GET /logs", page(`<h1 id="title">Logs</h1><script src="/static/logs.js"></script>`))
	mux.Handle("GET /missing", page(`<h1 id="title">Missing</h1><img src="/static/nope.png" alt="">`))
	mux.Handle("GET /counter", page(`<button id="inc" type="button">+1</button> <span id="count">0</span>`+
		`<script src="/static/counter.js"></script>`))
	mux.Handle("GET /form", page(`<form method="post" action="/form"><label>Name <input id="name" name="name"></label>`+
		`<button id="go" type="submit">Go</button></form>`))
	mux.HandleFunc("POST /form", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "sess", Value: "s3cret", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/done?name="+r.FormValue("name"), http.StatusSeeOther)
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) {
		page(`<p id="greeting">Hello, <span id="who"></span></p>`).ServeHTTP(&nameWriter{w, r.URL.Query().Get("name")}, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// nameWriter fills the #who span server-side (the CSP forbids doing it with an inline script).
type nameWriter struct {
	http.ResponseWriter
	name string
}

func (w *nameWriter) Write(p []byte) (int, error) {
	out := bytes.Replace(p, []byte(`<span id="who"></span>`),
		[]byte(`<span id="who">`+htmlEscape(w.name)+`</span>`), 1)
	if _, err := w.ResponseWriter.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// problemsOn loads path in a fresh browser and returns what CheckClean reports.
func problemsOn(t *testing.T, path string) (*Browser, []string) {
	t.Helper()
	srv := site(t)
	b := Start(t)
	b.Navigate(srv.URL + path)
	b.WaitVisible("#title")
	ft := &fakeT{TB: t}
	b.CheckClean(ft)
	return b, ft.errors
}

func TestCleanPagePasses(t *testing.T) {
	t.Parallel()
	b, errs := problemsOn(t, "/")
	if len(errs) != 0 {
		t.Fatalf("clean page reported: %v", errs)
	}
	if got := b.Text("#title"); got != "Hello" {
		t.Errorf("Text(#title) = %q, want Hello", got)
	}
	if got := b.Title(); got != "t" {
		t.Errorf("Title() = %q, want t", got)
	}
}

func TestReportsProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		path string
		want []string // each must appear in the report
	}{
		{"/inline", []string{"Content Security Policy", "script-src 'self'"}},
		{"/throws", []string{"exception", "boom from throws.js"}},
		{"/logs", []string{"console: error: bad thing happened"}},
		{"/missing", []string{"404", "/static/nope.png"}},
		{"/inline-style", []string{"Content Security Policy", "style-src 'self'"}},
		{"/inline-handler", []string{"Content Security Policy", "event handler"}},
		{"/broken", []string{"network: failed: net::ERR_EMPTY_RESPONSE", "/static/broken.js"}},
	}
	for _, tc := range cases {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			t.Parallel()
			b, errs := problemsOn(t, tc.path)
			if len(errs) != 1 {
				t.Fatalf("CheckClean reported %d failures, want 1: %v", len(errs), errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("report lacks %q:\n%s", w, errs[0])
				}
			}
			if tc.path == "/logs" && strings.Contains(errs[0], "fine") {
				t.Errorf("console.log was reported:\n%s", errs[0])
			}
			if tc.path == "/inline" {
				// The CSP held: the inline script did not run.
				if got := b.Title(); got != "t" {
					t.Errorf("inline script ran under CSP: title %q", got)
				}
			}
			t.Logf("report:\n%s", errs[0])
		})
	}
}

func TestAllowAndClear(t *testing.T) {
	t.Parallel()
	srv := site(t)
	b := Start(t)
	b.Navigate(srv.URL + "/missing")
	b.WaitVisible("#title")
	// Anchored on the image's URL: a bare "404" also matched a server port such as 34045, which
	// hid the exception this test expects (CI failed on it).
	b.Allow(`/static/nope\.png\)$`)
	ft := &fakeT{TB: t}
	b.CheckClean(ft)
	if len(ft.errors) != 0 {
		t.Fatalf("allowed problems reported: %v", ft.errors)
	}

	b.Navigate(srv.URL + "/throws")
	b.WaitVisible("#title")
	ft = &fakeT{TB: t}
	b.CheckClean(ft)
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "boom") {
		t.Fatalf("an exception outside the allowed pattern was not reported: %v", ft.errors)
	}
	b.ClearProblems()
	b.CheckClean(t)

	// What was recorded before Close is still reported after it.
	b.Navigate(srv.URL + "/throws")
	b.WaitVisible("#title")
	b.Close()
	ft = &fakeT{TB: t}
	b.CheckClean(ft)
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "boom") {
		t.Fatalf("CheckClean after Close = %v, want the exception", ft.errors)
	}
}

func TestClickFormAndCookies(t *testing.T) {
	t.Parallel()
	srv := site(t)
	b := Start(t)

	b.Navigate(srv.URL + "/counter")
	b.Click("#inc")
	b.Click("#inc")
	if got := b.Text("#count"); got != "2" {
		t.Errorf("after two clicks count = %q, want 2", got)
	}
	if n := b.Count("#inc"); n != 1 {
		t.Errorf("Count(#inc) = %d", n)
	}

	b.Navigate(srv.URL + "/form")
	b.SendKeys("#name", "Ada")
	b.SendKeys("#name", " L")
	if got := b.Value("#name"); got != "Ada L" {
		t.Errorf("Value after SendKeys = %q", got)
	}
	b.SetValue("#name", "Grace <b>")
	b.ClickAndWait("#go")
	b.WaitVisible("#greeting")
	if got := b.Text("#who"); got != "Grace <b>" {
		t.Errorf("greeting names %q, want %q", got, "Grace <b>")
	}
	if u := b.CurrentURL(); !strings.HasPrefix(u, srv.URL+"/done?") {
		t.Errorf("CurrentURL = %q", u)
	}
	c, ok := b.Cookie("sess")
	if !ok {
		t.Fatalf("no sess cookie; have %+v", b.Cookies())
	}
	if !c.HTTPOnly || c.SameSite != "Lax" || c.Value != "s3cret" || c.Path != "/" || !c.Session {
		t.Errorf("cookie = %+v, want HttpOnly Lax session cookie s3cret on /", c)
	}
	// HttpOnly: scripts in the page cannot read it.
	if got := b.Eval("document.cookie"); strings.Contains(got, "s3cret") {
		t.Errorf("document.cookie exposes the HttpOnly cookie: %q", got)
	}

	// Submitting the form through the form element works too.
	b.Navigate(srv.URL + "/form")
	b.SetValue("#name", "Bob")
	b.SubmitAndWait("#name")
	if got := b.Text("#who"); got != "Bob" {
		t.Errorf("after SubmitAndWait greeting names %q", got)
	}
	b.CheckClean(t)
}

func TestCookiesDoNotLeakBetweenTests(t *testing.T) {
	t.Parallel()
	srv := site(t)
	signIn := func(b *Browser) {
		t.Helper()
		b.Navigate(srv.URL + "/form")
		b.SetValue("#name", "x")
		b.SubmitAndWait("#name")
		if _, ok := b.Cookie("sess"); !ok {
			t.Fatal("no cookie after submit")
		}
	}
	first := Start(t)
	signIn(first)
	// A second tab open at the same time (the same browser process) does not see the cookie.
	second := Start(t)
	second.Navigate(srv.URL + "/form")
	if _, ok := second.Cookie("sess"); ok {
		t.Fatal("a concurrent Browser sees another's cookie")
	}
	first.Close()
	second.Close()
	// Nor does one started after both closed (possibly a new browser process).
	third := Start(t)
	third.Navigate(srv.URL + "/form")
	if _, ok := third.Cookie("sess"); ok {
		t.Fatal("a later Browser sees an earlier one's cookie")
	}
}

func TestScreenshot(t *testing.T) {
	t.Parallel()
	srv := site(t)
	b := Start(t)
	b.Navigate(srv.URL + "/")
	b.WaitVisible("#title")
	path := filepath.Join(t.TempDir(), "shots", "home.png")
	b.Screenshot(path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	// Full page: taller than the 900px window because of the 1500px paragraph.
	if cfg.Width == 0 || cfg.Height <= 900 {
		t.Errorf("screenshot is %dx%d, want the full page (taller than the viewport)", cfg.Width, cfg.Height)
	}
	b.CheckClean(t)
}

func TestChromiumEnv(t *testing.T) {
	t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
	if _, err := Chromium(); err == nil || !strings.Contains(err.Error(), EnvChromium) {
		t.Fatalf("Chromium() with a missing %s = %v, want an error naming it", EnvChromium, err)
	}
}

func TestWaitTextAndDocScreenshot(t *testing.T) {
	t.Parallel()
	srv := site(t)
	b := Start(t)
	b.CheckCleanAtEnd()
	b.Navigate(srv.URL + "/counter")
	b.Click("#inc")
	if got := b.WaitText("#count", "1"); got != "1" {
		t.Errorf("WaitText = %q", got)
	}
	if h := b.HTML(); !strings.Contains(h, `id="count"`) {
		t.Errorf("HTML lacks the counter: %s", h)
	}
	if os.Getenv(EnvUpdateScreenshots) == "" {
		path := b.DocScreenshot("counter")
		if !strings.HasSuffix(path, "counter.png") || strings.Contains(path, filepath.Join("docs", "screenshots")) {
			t.Errorf("DocScreenshot wrote %s, want a temporary file", path)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("DocScreenshot file: %v", err)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "browsertest")); err != nil {
		t.Errorf("repoRoot = %s, which does not hold internal/browsertest", root)
	}
}

// stopT records how Start ended the test instead of ending it.
type stopT struct {
	testing.TB
	how, msg string
}

type stopped struct{}

func (s *stopT) Helper() {}
func (s *stopT) Fatalf(format string, args ...any) {
	s.how, s.msg = "fatal", fmt.Sprintf(format, args...)
	panic(stopped{})
}
func (s *stopT) Skipf(format string, args ...any) {
	s.how, s.msg = "skip", fmt.Sprintf(format, args...)
	panic(stopped{})
}

func TestMissingBrowserSkipsLocallyFailsUnderCI(t *testing.T) {
	t.Setenv(EnvChromium, filepath.Join(t.TempDir(), "no-such-browser"))
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		st := &stopT{TB: t}
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(stopped); !ok {
						panic(r)
					}
				}
			}()
			Start(st)
		}()
		want := "skip"
		if ci == "true" {
			want = "fatal"
		}
		if st.how != want || !strings.Contains(st.msg, EnvChromium) {
			t.Errorf("CI=%q: Start ended with %s %q, want %s naming %s", ci, st.how, st.msg, want, EnvChromium)
		}
	}
}
