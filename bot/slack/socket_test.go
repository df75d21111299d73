package slack_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ony-ai/ony/bot/slack"
	"github.com/ony-ai/ony/bot/slack/slacktest"
	"github.com/ony-ai/ony/channel"
)

const appToken = "xapp-1-test-app-token"

// runSocket starts Run in the background and returns a stop that cancels it and checks it
// returned nil promptly.
func runSocket(t *testing.T, ch *slack.Channel, host channel.Host) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ch.Run(ctx, host) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v on shutdown, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestSocketModeTapsAndCommands(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	fake.SocketMode(appToken)
	ch := newChannel(t, fake, slack.Config{AppToken: appToken})
	host := newHost()
	stop := runSocket(t, ch, host)
	if err := fake.WaitOpened(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}

	env := fake.PushInteraction(member, "ony_decide_1", "tok_abc123|approve")
	acks, err := fake.WaitAcked(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if acks[0].EnvelopeID != env {
		t.Fatalf("acked %+v, want %s", acks[0], env)
	}
	rs, err := fake.WaitResponded(ctxT(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].ResponseType != "ephemeral" || rs[0].Text != "Recorded: Approve. The message updates for everyone in a moment." {
		t.Fatalf("answer %+v", rs[0])
	}
	want := channel.Answer{Token: "tok_abc123", Option: "approve", Channel: "slack", From: member}
	if got := host.decided(); len(got) != 1 || got[0] != want {
		t.Fatalf("decided %+v, want %+v", got, want)
	}

	// Slack redelivers an envelope it thinks was lost: acknowledged again, acted on once.
	fake.Redeliver(env)
	if _, err := fake.WaitAcked(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}

	cmd := fake.PushCommand(member, "link abcd-efgh-jkmn")
	acks, err = fake.WaitAcked(ctxT(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if acks[2].EnvelopeID != cmd || json.Unmarshal(acks[2].Payload, &reply) != nil ||
		reply.ResponseType != "ephemeral" || reply.Text != "Linked to Ana at Acme." {
		t.Fatalf("command ack %+v (%s)", acks[2], acks[2].Payload)
	}
	if got := host.linked(); len(got) != 1 || got[0] != [3]string{"abcd-efgh-jkmn", "slack", member} {
		t.Fatalf("linked %+v", got)
	}

	// A console link button: acknowledged, nothing decided.
	fake.PushInteraction(member, "ony_console", "")
	if _, err := fake.WaitAcked(ctxT(t), 4); err != nil {
		t.Fatal(err)
	}
	stop()
	if got := len(host.decided()); got != 1 {
		t.Fatalf("decided %d times, want once", got)
	}
	if got := len(fake.Responses()); got != 1 {
		t.Fatalf("answered %d times, want once", got)
	}
}

func TestSocketModeReconnects(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	fake.SocketMode(appToken)
	ch := newChannel(t, fake, slack.Config{AppToken: appToken})
	host := newHost()
	runSocket(t, ch, host)
	if err := fake.WaitOpened(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	fake.DropSockets()
	if err := fake.WaitOpened(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	fake.PushInteraction(member, "ony_decide_2", "tok_abc123|deny")
	if _, err := fake.WaitResponded(ctxT(t), 1); err != nil {
		t.Fatal(err)
	}
	if got := host.decided(); len(got) != 1 || got[0].Option != "deny" {
		t.Fatalf("decided %+v", got)
	}
}

func TestSocketModeWrongAppTokenKeepsRetrying(t *testing.T) {
	t.Parallel()
	fake := slacktest.New(t, botToken)
	fake.SocketMode(appToken)
	ch := newChannel(t, fake, slack.Config{AppToken: "xapp-wrong"})
	stop := runSocket(t, ch, newHost())
	deadline := time.Now().Add(5 * time.Second)
	for fake.Calls("apps.connections.open") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if got := fake.Calls("apps.connections.open"); got < 2 {
		t.Fatalf("apps.connections.open called %d times, want retries", got)
	}
	if fake.Opened() != 0 {
		t.Fatal("a wrong app token opened a connection")
	}
}
