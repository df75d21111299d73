package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/internal/testserver"
)

func TestProbe(t *testing.T) {
	for _, d := range []string{"sqlite", "postgres"} {
		t0 := time.Now()
		in := testserver.Start(t, testserver.Options{Dialect: d}).Seed(t)
		t.Logf("%s start+seed %v", d, time.Since(t0))
		t0 = time.Now()
		p := in.Person(t, in.Member)
		t.Logf("%s login %v", d, time.Since(t0))
		t0 = time.Now()
		h, _, err := in.Agent(t).Create(context.Background(), client.CreateRequest{Action: "shell.exec", Title: "x", Timeout: 10 * time.Second}, "")
		t.Logf("%s create %v %v", d, time.Since(t0), err)
		_ = p
		t0 = time.Now()
		h2, err := in.Agent(t).Wait(context.Background(), h.ID)
		t.Logf("%s expire after %v: %v %v", d, time.Since(t0), h2.Status, err)
	}
	t0 := time.Now()
	auth.HashPassword("abcdefabcdefabc")
	t.Logf("hash %v", time.Since(t0))
}
