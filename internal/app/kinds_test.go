package app_test

import (
	"slices"
	"testing"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/internal/app"
)

// The built-in kinds, in the order help text lists them; escalation's own tests use the same list.
func TestBuiltinKinds(t *testing.T) {
	t.Parallel()
	k := app.BuiltinKinds()
	if got, want := k.Names(), []string{"console", "webhook", "slack", "telegram", "sms", "call"}; !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	var contacts []string
	for _, c := range k.Contacts() {
		contacts = append(contacts, c.Name+"/"+c.Field)
	}
	if want := []string{"slack/slack_id", "telegram/telegram_id", "phone/phone"}; !slices.Equal(contacts, want) {
		t.Errorf("contacts %v, want %v", contacts, want)
	}
	more, err := app.Kinds(channel.Kind{Name: "pager", People: true})
	if err != nil || len(more.Names()) != 7 {
		t.Errorf("Kinds(pager) = %v, %v", more, err)
	}
	if _, err := app.Kinds(channel.Kind{Name: "sms", People: true}); err == nil {
		t.Error("a second sms kind was accepted")
	}
}
