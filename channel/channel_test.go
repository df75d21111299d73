package channel_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

var phone = &channel.ContactKind{Name: "phone", Field: "phone", Verify: true,
	Normalize: func(s string) (string, error) { return s, nil }, Mask: func(s string) string { return "…" }}

var (
	sms    = channel.Kind{Name: "sms", People: true, Contact: phone}
	call   = channel.Kind{Name: "call", People: true, Contact: phone, Redials: true}
	bridge = channel.Kind{Name: "webhook", Configured: true, TeamForm: "webhook:<name>", Team: func(string) error { return nil }}
)

func TestNewKinds(t *testing.T) {
	t.Parallel()
	k, err := channel.NewKinds(channel.ConsoleKind, sms, call, bridge)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Names(); !slices.Equal(got, []string{"console", "sms", "call", "webhook"}) {
		t.Errorf("Names = %v", got)
	}
	if got := k.Where(func(k channel.Kind) bool { return k.Redials }); !slices.Equal(got, []string{"call"}) {
		t.Errorf("Where(Redials) = %v", got)
	}
	if cs := k.Contacts(); len(cs) != 1 || cs[0] != phone {
		t.Errorf("two kinds on one contact list it once: %v", cs)
	}
	if c, ok := k.Contact("phone"); !ok || c != phone {
		t.Error("Contact(phone) not found")
	}
	if _, ok := k.Kind("pager"); ok {
		t.Error("an unregistered kind was found")
	}

	otherPhone := *phone
	for name, ks := range map[string][]channel.Kind{
		"twice":                  {sms, sms},
		"reserved name":          {{Name: "group", People: true}},
		"upper-case name":        {{Name: "SMS", People: true}},
		"reaches nobody":         {{Name: "void"}},
		"team without a form":    {{Name: "x", Team: func(string) error { return nil }}},
		"contact without people": {{Name: "x", Contact: phone, Team: func(string) error { return nil }, TeamForm: "x:<y>"}},
		"two phones":             {sms, {Name: "call", People: true, Contact: &otherPhone}},
		"contact without mask":   {{Name: "x", People: true, Contact: &channel.ContactKind{Name: "x", Field: "x", Normalize: phone.Normalize}}},
	} {
		if _, err := channel.NewKinds(ks...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAddress(t *testing.T) {
	t.Parallel()
	at := time.Now()
	u := store.User{ID: "u1", Contacts: []store.Contact{{Kind: "phone", Address: "+15550100001"}}}
	if got := sms.Address(u); got != "" {
		t.Errorf("an unverified phone reaches the person: %q", got)
	}
	u.Contacts[0].VerifiedAt = &at
	if got := sms.Address(u); got != "+15550100001" {
		t.Errorf("a verified phone: %q", got)
	}
	if got := channel.ConsoleKind.Address(u); got != "u1" {
		t.Errorf("the console reaches a person by id: %q", got)
	}
	if got := bridge.Address(u); got != "" {
		t.Errorf("a kind without people reached one: %q", got)
	}
}

type fake struct{ kind, provider string }

func (f fake) Kind() string     { return f.kind }
func (f fake) Provider() string { return f.provider }
func (fake) Notify(context.Context, channel.Notification) (channel.Delivery, error) {
	return channel.Delivery{}, nil
}
func (fake) Update(context.Context, channel.Update) error { return nil }

type bridges struct {
	fake
	names []string
}

func (b bridges) Has(name string) bool { return slices.Contains(b.names, name) }

func TestRegistry(t *testing.T) {
	t.Parallel()
	kinds := channel.MustKinds(sms, call, bridge)
	if _, err := channel.NewRegistry(kinds, fake{"pager", "x"}); err == nil {
		t.Error("a channel of an unregistered kind was accepted")
	}
	if _, err := channel.NewRegistry(kinds, fake{"sms", "a"}, fake{"sms", "a"}); err == nil {
		t.Error("one provider registered twice was accepted")
	}
	r, err := channel.NewRegistry(kinds, fake{"sms", "a"}, fake{"sms", "b"}, bridges{fake{"webhook", "builtin"}, []string{"teams"}})
	if err != nil {
		t.Fatal(err)
	}
	names := func(cs []channel.Channel) (out []string) {
		for _, c := range cs {
			out = append(out, c.Provider())
		}
		return out
	}
	for _, tt := range []struct {
		order, want []string
	}{{nil, []string{"a", "b"}}, {[]string{"b", "a"}, []string{"b", "a"}}, {[]string{"b", "nope"}, []string{"b"}}} {
		if got := names(r.Providers("sms", tt.order)); !slices.Equal(got, tt.want) {
			t.Errorf("Providers(sms, %v) = %v, want %v", tt.order, got, tt.want)
		}
	}
	if r.Provider("sms", "b") == nil || r.Provider("call", "a") != nil {
		t.Error("Provider finds the wrong channel")
	}
	if !r.HasDestination("webhook", "teams") || r.HasDestination("webhook", "ops") || r.HasDestination("pager", "x") {
		t.Error("HasDestination: only configured bridges exist")
	}
	if !r.HasDestination("sms", "anything") {
		t.Error("a kind that is not Configured has every destination")
	}
}

type receiver struct {
	fake
	routes []channel.Route
}

func (r receiver) Routes(channel.Host) []channel.Route { return r.routes }

func TestRoutes(t *testing.T) {
	t.Parallel()
	kinds := channel.MustKinds(sms, call)
	h := http.NotFoundHandler()
	smsHooks := receiver{fake{"sms", "twilio"}, []channel.Route{{Method: "POST", Path: "sms", Handler: h}}}
	callHooks := receiver{fake{"call", "twilio"}, []channel.Route{{Method: "POST", Path: "calls/{token}", Handler: h}, {Method: "POST", Path: "", Handler: h}}}
	r, err := channel.NewRegistry(kinds, smsHooks, callHooks, fake{"sms", "plain"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Routes(nil)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, m := range got {
		patterns = append(patterns, m.Pattern)
	}
	if want := []string{"POST /hooks/twilio/sms", "POST /hooks/twilio/calls/{token}", "POST /hooks/twilio"}; !slices.Equal(patterns, want) {
		t.Errorf("patterns %v, want %v", patterns, want)
	}

	for name, bad := range map[string]channel.Channel{
		"clash":         receiver{fake{"call", "twilio"}, []channel.Route{{Method: "POST", Path: "sms", Handler: h}}},
		"leading slash": receiver{fake{"call", "x"}, []channel.Route{{Method: "POST", Path: "/sms", Handler: h}}},
		"no handler":    receiver{fake{"call", "x"}, []channel.Route{{Method: "POST", Path: "sms"}}},
		"bad provider":  receiver{fake{"call", "Twi lio"}, []channel.Route{{Method: "POST", Path: "sms", Handler: h}}},
		"bad pattern":   receiver{fake{"call", "x"}, []channel.Route{{Method: "POST", Path: "a/{b", Handler: h}}},
	} {
		r, err := channel.NewRegistry(kinds, smsHooks, bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Routes(nil); err == nil {
			t.Errorf("%s: mounted", name)
		} else if !strings.Contains(err.Error(), "channel:") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
