// Package seamtest proves the channel seam from the outside: a throw-away channel kind, written here
// against package channel alone, is registered through the wiring's options and then works end to
// end — ladders name it, people get a contact of its kind, its own signed /hooks/ routes decide by
// token and report status by the provider's reference — with no line of the engine, the ladder
// parser or org knowing it exists.
package seamtest_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// --- The pager: a kind of channel Ony has never heard of ---

var pagerIDRE = regexp.MustCompile(`^[0-9]{2,8}$`)

var pagerContact = &channel.ContactKind{
	Name: "pager", Field: "pager_id", Usage: "pager number",
	Normalize: func(s string) (string, error) {
		if s = strings.TrimSpace(s); !pagerIDRE.MatchString(s) {
			return "", errors.New("a pager number is 2 to 8 digits")
		}
		return s, nil
	},
	Mask: func(s string) string { return "••" + s[len(s)-1:] },
}

var pagerKind = channel.Kind{Name: "pager", People: true, Contact: pagerContact, TakesDecisions: true, Redials: true}

// pager is the pager network's provider: Notify "sends" a page (kept for the test to read) and the
// network calls back on two signed routes, one for a person's answer and one for delivery status.
type pager struct {
	secret []byte

	mu      sync.Mutex
	pages   []channel.Notification
	refs    []string
	updates []channel.Update
	paged   chan struct{}
}

func (p *pager) Kind() string     { return pagerKind.Name }
func (p *pager) Provider() string { return "pagernet" }

func (p *pager) Notify(_ context.Context, n channel.Notification) (channel.Delivery, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages = append(p.pages, n)
	ref := fmt.Sprintf("PG-%d", len(p.pages))
	p.refs = append(p.refs, ref)
	select {
	case p.paged <- struct{}{}:
	default:
	}
	return channel.Delivery{Ref: ref, State: store.SendSent}, nil
}

func (p *pager) Update(_ context.Context, u channel.Update) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updates = append(p.updates, u)
	return nil
}

func (p *pager) Routes(host channel.Host) []channel.Route {
	return []channel.Route{
		{Method: "POST", Path: "reply", Handler: p.verified(func(w http.ResponseWriter, r *http.Request, body []byte) {
			var in struct{ Token, Option string }
			if err := json.Unmarshal(body, &in); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			h, err := host.Decide(r.Context(), channel.Answer{Token: in.Token, Option: in.Option, Channel: pagerKind.Name})
			if p, ok := problem.As(err); ok {
				w.WriteHeader(http.StatusConflict)
				fmt.Fprint(w, p.Code+": "+p.Message)
				return
			}
			if err != nil {
				http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, h.Status)
		})},
		{Method: "POST", Path: "status", Handler: p.verified(func(w http.ResponseWriter, r *http.Request, body []byte) {
			var in struct{ Ref, State string }
			if err := json.Unmarshal(body, &in); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
			err := host.Report(r.Context(), "pagernet", in.Ref, store.SendState(in.State))
			if errors.Is(err, store.ErrNotFound) {
				http.Error(w, "unknown page", http.StatusNotFound)
				return
			}
			if err != nil {
				http.Error(w, "bad report", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})},
	}
}

// verified checks the network's signature on the raw body before anything reads it.
func (p *pager) verified(next func(http.ResponseWriter, *http.Request, []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		got, _ := hex.DecodeString(r.Header.Get("X-Pager-Signature"))
		if err != nil || !hmac.Equal(got, sign(p.secret, body)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		next(w, r, body)
	})
}

func sign(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

func (p *pager) sent() ([]channel.Notification, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]channel.Notification(nil), p.pages...), append([]string(nil), p.refs...)
}

// --- The proof ---

func TestAThrowAwayKindWorksEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			testThrowAwayKind(t, d)
		})
	}
}

func testThrowAwayKind(t *testing.T, dialect string) {
	ctx := context.Background()
	p := &pager{secret: []byte("pagernet shared secret"), paged: make(chan struct{}, 16)}
	ladders := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ladders, "pages.yaml"), []byte(`
name: pages
default: true
steps:
  - channels: [pager, console]
    targets: [role:admin]
    wait: 1h
end: wait
`), 0o600))
	in := testserver.Start(t, testserver.Options{Dialect: dialect, Kinds: []channel.Kind{pagerKind}, Channels: []channel.Channel{p},
		Configure: func(c *config.Config) { c.Escalation.LaddersDir = ladders }}).Seed(t)

	// People's settings take a contact of the new kind, checked and masked by the kind itself.
	people := org.Service{Store: in.App.Store, Audit: in.App.Audit, Kinds: in.App.Escalation.Kinds()}
	by := audit.Actor{Kind: "system", ID: "test"}
	if _, err := people.UpdateContact(ctx, by, in.OrgID, in.Admin.Email, org.Contact{Addresses: map[string]*string{"pager": ptr("x1")}}); len(org.Problems(err)) != 1 || org.Problems(err)[0].Field != "pager_id" {
		t.Fatalf("a bad pager number: %v", err)
	}
	if _, err := people.UpdateContact(ctx, by, in.OrgID, in.Admin.Email, org.Contact{Addresses: map[string]*string{"pager": ptr(" 4711 ")}}); err != nil {
		t.Fatal(err)
	}

	// An agent asks; the ladder pages the admin on the new kind, with a decision token.
	agent := in.Agent(t)
	h, _, err := agent.Create(ctx, clientRequest(), "")
	must(t, err)
	select {
	case <-p.paged:
	case <-time.After(30 * time.Second):
		t.Fatal("nobody was paged")
	}
	pages, refs := p.sent()
	if len(pages) != 1 || pages[0].Recipient.Address != "4711" || pages[0].Recipient.UserID != in.Admin.ID ||
		!strings.HasPrefix(pages[0].Token, "ony_dt_") || pages[0].HandoffID != h.ID {
		t.Fatalf("pages %+v", pages)
	}
	tok, ref := pages[0].Token, refs[0]

	post := func(path string, body any, signed bool) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", in.URL+"/hooks/pagernet/"+path, bytes.NewReader(b))
		sig := sign(p.secret, b)
		if !signed {
			sig = sign([]byte("not the secret"), b)
		}
		req.Header.Set("X-Pager-Signature", hex.EncodeToString(sig))
		res, err := testhttp.Client.Do(req)
		must(t, err)
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(out)
	}
	admin := in.Person(t, in.Admin)
	state := func() string {
		t.Helper()
		e, err := admin.Escalation(ctx, h.ID)
		must(t, err)
		for _, s := range e.Sends {
			if s.Channel == "pager" {
				return s.State
			}
		}
		return "none"
	}

	// The network answered Notify before the engine recorded the reference: wait for the row.
	for deadline := time.Now().Add(30 * time.Second); state() != "sent"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the page was not recorded as sent: %s", state())
		}
	}

	// Status callbacks find the page by the network's own reference, and only a signed one counts.
	if code, _ := post("status", map[string]string{"ref": ref, "state": "delivered"}, false); code != http.StatusUnauthorized {
		t.Errorf("forged status: %d", code)
	}
	if got := state(); got != "sent" {
		t.Errorf("after a forged status the page is %s", got)
	}
	if code, _ := post("status", map[string]string{"ref": "PG-999", "state": "delivered"}, true); code != http.StatusNotFound {
		t.Errorf("status of an unknown page: %d", code)
	}
	if code, _ := post("status", map[string]string{"ref": ref, "state": "delivered"}, true); code != http.StatusNoContent {
		t.Errorf("status: %d", code)
	}
	if got := state(); got != "delivered" {
		t.Errorf("after a status callback the page is %s", got)
	}

	// The route's body goes through the server's limit.
	big, _ := http.NewRequest("POST", in.URL+"/hooks/pagernet/reply", bytes.NewReader(make([]byte, 2<<20)))
	res, err := testhttp.Client.Do(big)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB reply: %d", res.StatusCode)
	}

	// A forged answer decides nothing; a signed one decides through the token, as the admin.
	if code, _ := post("reply", map[string]string{"token": tok, "option": "approve"}, false); code != http.StatusUnauthorized {
		t.Errorf("forged reply: %d", code)
	}
	if got, err := agent.Get(ctx, h.ID); err != nil || got.Status != "pending" {
		t.Fatalf("after a forged reply: %+v %v", got, err)
	}
	if code, body := post("reply", map[string]string{"token": tok, "option": "approve"}, true); code != http.StatusOK || body != "approved" {
		t.Fatalf("reply: %d %s", code, body)
	}
	final, err := agent.Wait(ctx, h.ID)
	must(t, err)
	if final.Status != "approved" || final.Decision == nil || final.Decision.Channel != "pager" {
		t.Fatalf("the agent got %+v", final)
	}

	// A late answer is told who won; the page is rewritten with the outcome.
	if code, body := post("reply", map[string]string{"token": tok, "option": "deny"}, true); code != http.StatusConflict ||
		!strings.Contains(body, "already_final: this handoff was already approved by Ada Admin via pager") {
		t.Errorf("late reply: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		ups := append([]channel.Update(nil), p.updates...)
		p.mu.Unlock()
		if len(ups) > 0 {
			if ups[0].Ref != ref || !strings.HasPrefix(ups[0].Text, "Approved by Ada Admin via pager") {
				t.Errorf("update %+v", ups[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the page was never updated with the outcome")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func clientRequest() client.CreateRequest {
	return client.CreateRequest{Action: "deploy", Title: "Deploy api v2", Labels: map[string]string{"env": "prod"}}
}
