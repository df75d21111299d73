package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/org"
)

// ExampleClient_Create asks for a decision. A retry with the same idempotency key returns the same
// handoff instead of creating a twin, so keep the key for as long as you retry the same request.
func ExampleClient_Create() {
	ony := exampleServer() // in real use: os.Getenv("ONY_URL"), os.Getenv("ONY_TOKEN")
	c, err := client.New(ony.url, ony.token, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	req := client.CreateRequest{
		Action:  "deploy",
		Title:   "Deploy api v2 to prod",
		Labels:  map[string]string{"env": "prod"},
		Payload: &client.Payload{Kind: "command", Content: "kubectl apply -f api.yaml"},
		Timeout: 15 * time.Minute,
	}
	key := client.NewIdempotencyKey()
	h, _, err := c.Create(ctx, req, key)
	if err != nil {
		log.Fatal(err)
	}
	// Ony derives the risk itself; whatever the agent claims about risk is discarded.
	fmt.Println(h.Status, h.Risk, h.RiskReasons)

	// The answer was lost (a timeout, a 503 from a proxy)? Send the same request with the same key.
	again, replayed, err := c.Create(ctx, req, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("replayed:", replayed, "same handoff:", again.ID == h.ID)
	// Output:
	// pending high [deploy production_environment]
	// replayed: true same handoff: true
}

// ExampleClient_Wait waits for a person's decision. Wait reconnects its long-polls and retries
// transient failures by itself; bound it a little past the handoff's expiry, when the server reports
// "expired" (nobody answered) — which is not a denial.
func ExampleClient_Wait() {
	ony := exampleServer()
	c, err := client.New(ony.url, ony.token, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	h, _, err := c.Create(ctx, client.CreateRequest{
		Action: "db.migrate", Title: "Add an index to orders", Timeout: 10 * time.Minute,
	}, client.NewIdempotencyKey())
	if err != nil {
		log.Fatal(err)
	}
	ony.decideSoon(h.ID, "approve", "go ahead") // a person, in the console or chat

	ctx, cancel := context.WithDeadline(ctx, h.ExpiresAt.Add(30*time.Second))
	defer cancel()
	final, err := c.Wait(ctx, h.ID)
	if err != nil {
		log.Fatal(err)
	}
	switch final.Status {
	case client.StatusApproved:
		fmt.Printf("approved by %s: %q\n", final.Decision.By.Name, final.Decision.Comment)
	case client.StatusDenied:
		fmt.Printf("denied: %q\n", final.Decision.Comment)
	case client.StatusExpired:
		fmt.Println("nobody decided in time")
	case client.StatusCancelled:
		fmt.Println("cancelled")
	}
	// Output:
	// approved by Ana: "go ahead"
}

// ExampleVerifyCallback receives the final state at a callback_url instead of waiting. The request is
// signed per Standard Webhooks with a key derived from the device token: check it before trusting the
// body, and deduplicate on the webhook-id header, since retries repeat it.
func ExampleVerifyCallback() {
	ony := exampleServer()
	token := ony.token

	results := make(chan string, 1)
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		h, err := client.VerifyCallback(token, r.Header, body, time.Now())
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Anyone else's key fails.
		_, forged := client.VerifyCallback("ony_dev_someone-else", r.Header, body, time.Now())
		select {
		case results <- fmt.Sprintf("%s %q (another key: %v)", h.Status, h.Decision.Comment, forged != nil):
		default: // a retry of one already handled
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer callback.Close()

	c, err := client.New(ony.url, token, nil)
	if err != nil {
		log.Fatal(err)
	}
	h, _, err := c.Create(context.Background(), client.CreateRequest{
		Action: "payment", Title: "Refund order 1182", CallbackURL: callback.URL,
	}, client.NewIdempotencyKey())
	if err != nil {
		log.Fatal(err)
	}
	ony.decideSoon(h.ID, "deny", "needs a second look")

	select {
	case got := <-results:
		fmt.Println(got)
	case <-time.After(30 * time.Second):
		fmt.Println("no callback")
	}
	// Output:
	// denied "needs a second look" (another key: true)
}

// exampleOny is a throwaway Ony server for the examples: the same wiring as `ony serve`, on SQLite in a
// temporary directory, with its first organization's admin signed in to play the human.
type exampleOny struct {
	url, token string
	admin      *client.Client
	stop       func()
}

var (
	exampleMu      sync.Mutex
	exampleRunning *exampleOny
)

func exampleServer() *exampleOny {
	exampleMu.Lock()
	defer exampleMu.Unlock()
	if exampleRunning == nil {
		o, err := startExampleServer()
		if err != nil {
			log.Fatalf("example server: %v", err)
		}
		exampleRunning = o
	}
	return exampleRunning
}

func startExampleServer() (*exampleOny, error) {
	dir, err := os.MkdirTemp("", "ony-client-example-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = l.Addr().String()
	cfg.PublicURL = "http://" + cfg.Listen
	cfg.Jobs.PollInterval = config.Duration(50 * time.Millisecond)
	// The example's callback receiver listens on 127.0.0.1, beside the server.
	cfg.Callbacks.AllowPrivate = true

	ctx, cancel := context.WithCancel(context.Background())
	fail := func(err error) (*exampleOny, error) {
		cancel()
		l.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	a, err := app.New(ctx, &cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err != nil {
		return fail(err)
	}
	sv := org.Service{Store: a.Store, Audit: a.Audit}
	by := audit.Actor{Kind: "system", ID: "example"}
	created, err := sv.Create(ctx, by, org.NewOrg{Name: "Example", AdminEmail: "ana@example.com", AdminName: "Ana"})
	var device org.CreatedDevice
	if err == nil {
		device, err = sv.CreateDevice(ctx, by, created.OrgID, "example agent")
	}
	if err == nil {
		err = a.StartJobs(ctx)
	}
	if err != nil {
		a.Close(ctx)
		return fail(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l) }()
	o := &exampleOny{url: cfg.PublicURL, token: device.Token, stop: func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}}
	admin, err := client.New(o.url, "", nil)
	if err == nil {
		_, err = admin.Login(context.Background(), created.AdminEmail, created.AdminPassword)
	}
	if err != nil {
		o.stop()
		return nil, err
	}
	o.admin = admin
	return o, nil
}

// decideSoon has the admin decide id shortly, as a person would while the agent waits.
func (o *exampleOny) decideSoon(id, option, comment string) {
	go func() {
		time.Sleep(100 * time.Millisecond)
		if _, err := o.admin.Decide(context.Background(), id, option, comment); err != nil {
			log.Printf("example: decide: %v", err)
		}
	}()
}

func TestMain(m *testing.M) {
	code := m.Run()
	exampleMu.Lock()
	if exampleRunning != nil {
		exampleRunning.stop()
	}
	exampleMu.Unlock()
	os.Exit(code)
}
