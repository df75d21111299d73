package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/store"
)

var allTypes = []audit.EventType{audit.HandoffCreated, audit.HandoffDecided, audit.HandoffExpired,
	audit.HandoffCancelled, audit.MemberInvited, audit.MemberRole, audit.MemberOff, audit.MemberPasswordReset,
	audit.MemberPasswordChanged, audit.DeviceCreated,
	audit.DeviceRevoked, audit.LadderChanged, audit.PayloadScrubbed, audit.StepUpFailed, audit.OrgCreated, audit.OrgErased,
	audit.InviteCreated, audit.MemberJoined, audit.MemberReactivated, audit.MemberResetAsked, audit.OrgSettingsChanged,
	audit.ContactLinked, audit.ContactUnlinked, audit.ContactVerified}

// fullEvent uses every field, each at a valid value.
func fullEvent() audit.Event {
	root := sha256.Sum256([]byte("root"))
	return audit.Event{
		V: 1, Type: audit.HandoffCreated, At: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Actor:   audit.Actor{Kind: "user", ID: "0d5f3c1e-7a5b-4a53-9c43-8f1f0f7c2b1a", Role: "admin"},
		Subject: audit.Subject{Kind: "handoff", ID: "h_1.2:3-4"},
		Channel: "slack", Outcome: "approved",
		Details: &audit.Details{
			Action: "deploy.prod-eu_1", Risk: "critical", Reasons: []string{"recursive_delete"},
			TitleHash: audit.TitleHash("Deploy api"), Role: "viewer", SHA256: audit.TitleHash("ladder: yaml"),
			Size: 42, Root: base64.StdEncoding.EncodeToString(root[:]), Code: "bad_code", Option: "approve",
		},
	}
}

// TestValidateRejectsSmuggling walks every field through values that could carry free text, secrets or
// ambiguity, and requires Validate, Encode and Append to refuse each.
func TestValidateRejectsSmuggling(t *testing.T) {
	t.Parallel()
	if err := fullEvent().Validate(known); err != nil {
		t.Fatalf("the full event is valid: %v", err)
	}
	long := func(n int) string { return strings.Repeat("a", n) }
	badIDs := []string{"", "u 1", "u\n1", "u1\n", "\nu1", "u\t1", "u\r1", "u\x001", "ü", "u/1", "user@example.com",
		`u"1`, "u1;drop", "u1,u2", "u+1", "u=1", "{}", long(65), "Bob Smith"}
	badTokens := []string{"Approved", "APPROVED", "approved by bob", "approved\n", " approved", "-x", "_x", "a.b",
		"x:y", long(33), "ok!", "é"}
	badHashes := []string{"abc", strings.ToUpper(audit.TitleHash("x")), audit.TitleHash("x")[:63], audit.TitleHash("x") + "0",
		"Deploy api", strings.Repeat("g", 64), audit.TitleHash("x")[:63] + "\n", " " + audit.TitleHash("x")[1:],
		base64.StdEncoding.EncodeToString(make([]byte, 32))}
	badActions := []string{"Deploy the API to production", "deploy prod", "Deploy", "deploy.Prod", "deploy..prod",
		".deploy", "deploy.", "deploy\n", "deploy\nprod", "rm -rf /", "deploy/prod", "1deploy", "_deploy",
		"deploy." + long(95), "deploy:prod", "dé"}

	var cases []struct {
		name string
		edit func(*audit.Event)
	}
	add := func(name string, edit func(*audit.Event)) {
		cases = append(cases, struct {
			name string
			edit func(*audit.Event)
		}{name, edit})
	}
	add("version 0", func(e *audit.Event) { e.V = 0 })
	add("version 2", func(e *audit.Event) { e.V = 2 })
	for _, typ := range []audit.EventType{"", "handoff.approved", "HANDOFF.CREATED", "handoff.created ", "handoff.created\n", "payload.content"} {
		add("type "+string(typ), func(e *audit.Event) { e.Type = typ })
	}
	add("zero time", func(e *audit.Event) { e.At = time.Time{} })
	for _, k := range []string{"", "admin", "User", "agent"} {
		add("actor kind "+k, func(e *audit.Event) { e.Actor.Kind = k })
	}
	for _, id := range badIDs {
		add("actor id "+id, func(e *audit.Event) { e.Actor.ID = id })
		add("subject id "+id, func(e *audit.Event) { e.Subject.ID = id })
	}
	for _, r := range []string{"owner", "Admin", "admin "} {
		add("actor role "+r, func(e *audit.Event) { e.Actor.Role = r })
		add("details role "+r, func(e *audit.Event) { e.Details.Role = r })
	}
	for _, k := range []string{"", "payload", "Handoff", "command"} {
		add("subject kind "+k, func(e *audit.Event) { e.Subject.Kind = k })
	}
	for _, c := range []string{"ana@example.com", "+15550100001", "API", "api ", "slack\n", "chat:12345", strings.Repeat("x", 33)} {
		add("channel "+c, func(e *audit.Event) { e.Channel = c })
	}
	for _, tok := range badTokens {
		add("outcome "+tok, func(e *audit.Event) { e.Outcome = tok })
		add("code "+tok, func(e *audit.Event) { e.Details.Code = tok })
		add("option "+tok, func(e *audit.Event) { e.Details.Option = tok })
	}
	for _, a := range badActions {
		add("action "+a, func(e *audit.Event) { e.Details.Action = a })
	}
	for _, r := range []string{"severe", "HIGH", "high "} {
		add("risk "+r, func(e *audit.Event) { e.Details.Risk = r })
	}
	for _, rs := range [][]string{{"unknown_reason"}, {"recursive_delete", "rm -rf /"}, {""}, {"Recursive_delete"}} {
		add("reasons "+strings.Join(rs, ","), func(e *audit.Event) { e.Details.Reasons = rs })
	}
	for _, h := range badHashes {
		add("title hash "+h, func(e *audit.Event) { e.Details.TitleHash = h })
		add("sha256 "+h, func(e *audit.Event) { e.Details.SHA256 = h })
	}
	for _, r := range []string{"not base64", audit.TitleHash("x"), base64.StdEncoding.EncodeToString(make([]byte, 31)),
		base64.StdEncoding.EncodeToString(make([]byte, 33)), base64.RawStdEncoding.EncodeToString(make([]byte, 32)),
		base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"} {
		add("root "+r, func(e *audit.Event) { e.Details.Root = r })
	}
	add("negative size", func(e *audit.Event) { e.Details.Size = -1 })

	for _, c := range cases {
		e := fullEvent()
		c.edit(&e)
		if err := e.Validate(known); err == nil {
			t.Errorf("%q: Validate accepted %+v %+v", c.name, e, *e.Details)
		}
		if data, err := e.Encode(known); err == nil {
			t.Errorf("%q: Encode accepted it as %s", c.name, data)
		}
	}
	// Reason codes need a vocabulary: with none, every reason is refused.
	if err := fullEvent().Validate(nil); err == nil {
		t.Error("Validate with no reason vocabulary accepted a reason")
	}
	if err := fullEvent().Validate(func(string) bool { return false }); err == nil {
		t.Error("Validate accepted a reason the vocabulary refuses")
	}
}

// TestValidateAcceptsEdges keeps the closed vocabulary usable: every event type and channel, and values
// at their length limits.
func TestValidateAcceptsEdges(t *testing.T) {
	t.Parallel()
	for _, typ := range allTypes {
		e := fullEvent()
		e.Type = typ
		if err := e.Validate(known); err != nil {
			t.Errorf("type %s: %v", typ, err)
		}
	}
	for _, c := range []string{"", "api", "console", "slack", "telegram", "sms", "call", "system", "webhook", "pager"} {
		e := fullEvent()
		e.Channel = c
		if err := e.Validate(known); err != nil {
			t.Errorf("channel %q: %v", c, err)
		}
	}
	e := fullEvent()
	e.Actor.ID, e.Subject.ID = strings.Repeat("a", 64), strings.Repeat("Z", 64)
	e.Outcome, e.Details.Code, e.Details.Option = strings.Repeat("o", 32), strings.Repeat("c", 32), strings.Repeat("p", 32)
	e.Details.Action = "a." + strings.Repeat("b", 98)
	if err := e.Validate(known); err != nil {
		t.Errorf("values at their limits: %v", err)
	}
	minimal := audit.Event{V: 1, Type: audit.OrgCreated, At: time.Unix(1, 0), Actor: audit.Actor{Kind: "system", ID: "bootstrap"},
		Subject: audit.Subject{Kind: "org", ID: "o1"}}
	if err := minimal.Validate(nil); err != nil {
		t.Errorf("minimal event: %v", err)
	}
	if got, want := audit.TitleHash("Deploy api"), sha256.Sum256([]byte("Deploy api")); got != hex.EncodeToString(want[:]) {
		t.Errorf("TitleHash = %s", got)
	}
}

// TestEncodeCanonical pins the leaf bytes: field order, UTC with nanoseconds, no trailing newline, and
// the same bytes however the time was expressed.
func TestEncodeCanonical(t *testing.T) {
	t.Parallel()
	e := audit.Event{V: 1, Type: audit.HandoffDecided, At: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		Actor: audit.Actor{Kind: "user", ID: "u1", Role: "member"}, Subject: audit.Subject{Kind: "handoff", ID: "h1"},
		Channel: "api", Outcome: "approved", Details: &audit.Details{Option: "approve"}}
	const want = `{"v":1,"type":"handoff.decided","at":"2025-01-02T03:04:05.000000006Z","actor":{"kind":"user","id":"u1","role":"member"},"subject":{"kind":"handoff","id":"h1"},"channel":"api","outcome":"approved","details":{"option":"approve"}}`
	got, err := e.Encode(known)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("Encode:\n got %s\nwant %s", got, want)
	}
	lisbon := time.FixedZone("X", 5*3600+1800)
	variants := []time.Time{e.At.In(lisbon), e.At.Local(), time.Unix(0, e.At.UnixNano())}
	for _, at := range variants {
		v := e
		v.At = at
		b, err := v.Encode(known)
		if err != nil || !bytes.Equal(b, got) {
			t.Errorf("time %v encodes as %s (%v), want the UTC bytes", at, b, err)
		}
	}
	// A time carrying a monotonic reading encodes like the same instant without one, and encoding twice
	// gives the same bytes.
	now := time.Now()
	a, b := e, e
	a.At, b.At = now, now.Round(0).In(lisbon)
	ea1, _ := a.Encode(known)
	ea2, _ := a.Encode(known)
	eb, _ := b.Encode(known)
	if !bytes.Equal(ea1, ea2) || !bytes.Equal(ea1, eb) {
		t.Errorf("Encode is not deterministic:\n%s\n%s\n%s", ea1, ea2, eb)
	}
	if a.At != now {
		t.Error("Encode changed its receiver")
	}
	full, err := fullEvent().Encode(known)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(full, "\n\r\t ") {
		t.Errorf("leaf bytes contain whitespace: %q", full)
	}
	for i := 0; i < 20; i++ {
		again, _ := fullEvent().Encode(known)
		if !bytes.Equal(again, full) {
			t.Fatalf("Encode is not deterministic:\n%s\n%s", full, again)
		}
	}
}

// TestDecodeRoundTrip checks Decode(Encode(e)) gives e back (its time in UTC) and re-encodes to the same
// bytes, and that Decode refuses fields the format does not have.
func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	events := []audit.Event{fullEvent()}
	for i := 0; i < 12; i++ {
		e := event(i)
		e.V, e.At = 1, time.Date(2024, 2, 29, 23, 59, 59, i*1000003, time.FixedZone("Y", -7*3600))
		events = append(events, e)
	}
	for _, typ := range allTypes {
		e := fullEvent()
		e.Type, e.Details = typ, nil
		events = append(events, e)
	}
	for _, e := range events {
		data, err := e.Encode(known)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		got, err := audit.Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", data, err)
		}
		want := e
		want.At = e.At.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", data, got, want)
		}
		again, err := got.Encode(known)
		if err != nil || !bytes.Equal(again, data) {
			t.Errorf("re-encoding %s gave %s (%v)", data, again, err)
		}
	}
	for _, bad := range []string{
		`{"v":1,"type":"handoff.created","at":"2025-01-02T03:04:05Z","actor":{"kind":"device","id":"d1"},"subject":{"kind":"handoff","id":"h1"},"title":"Deploy"}`,
		`{"v":1,"type":"handoff.created","at":"2025-01-02T03:04:05Z","actor":{"kind":"device","id":"d1","name":"Bob"},"subject":{"kind":"handoff","id":"h1"}}`,
		`{"v":1,"type":"handoff.created","at":"2025-01-02T03:04:05Z","actor":{"kind":"device","id":"d1"},"subject":{"kind":"handoff","id":"h1"},"details":{"payload":"rm -rf /"}}`,
		`not json`, ``,
	} {
		if e, err := audit.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted it as %+v", bad, e)
		}
	}
}

// TestAppendRejectsInvalid checks an invalid event never reaches the log, and Append fills in the version
// and the time.
func TestAppendRejectsInvalid(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
		l := audit.New(newKeys(t), instance, known, func() time.Time { return at })
		org := orgID(t)
		bad := event(0)
		bad.Details.Option = "Approve with comment: ship it"
		err := s.InOrg(ctx, org, func(tx store.OrgTx) error { err := l.Append(ctx, tx, bad); return err })
		if err == nil {
			t.Fatal("Append accepted a free-text option")
		}
		var ids []string
		if err := s.InSystem(ctx, func(tx store.SystemTx) (err error) { ids, err = tx.AuditLogIDs(ctx); return err }); err != nil {
			t.Fatal(err)
		}
		if len(ids) != 0 {
			t.Fatalf("a refused event created logs %v", ids)
		}
		e := event(0)
		e.V = 7 // Append sets the version it writes
		if err := s.InOrg(ctx, org, func(tx store.OrgTx) error { err := l.Append(ctx, tx, e); return err }); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Sequence(ctx, s, org); err != nil { // with l's clock
			t.Fatal(err)
		}
		ls := leaves(t, s, org)
		got, err := audit.Decode(ls[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if got.V != 1 || !got.At.Equal(at) {
			t.Fatalf("appended %+v; want version 1 at %v", got, at)
		}
		if h := head(t, s, org); h.Size != 1 || !h.UpdatedAt.Equal(at) {
			t.Fatalf("head %+v", h)
		}
		verifyOK(t, s, l, org, 1)
	})
}
