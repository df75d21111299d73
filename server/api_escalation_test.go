package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/bot/webhook"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/internal/app"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/store"
)

// ---------------------------------------------------------------------------------------------
// Views of the escalation endpoints, decoded as a client would.

type ladderJSON struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Origin  string `json:"origin"`
	Default bool   `json:"default"`
	Steps   []struct {
		Name     string   `json:"name"`
		Channels []string `json:"channels"`
		Targets  []string `json:"targets"`
		Wait     string   `json:"wait"`
	} `json:"steps"`
	End    string `json:"end"`
	Source string `json:"source"`
}

type sendJSON struct {
	Climb     int       `json:"climb"`
	Step      int       `json:"step"`
	Attempt   int       `json:"attempt"`
	Channel   string    `json:"channel"`
	Target    string    `json:"target"`
	Provider  string    `json:"provider"`
	State     string    `json:"state"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type escalationJSON struct {
	Ladder  string     `json:"ladder"`
	Version int        `json:"version"`
	Sends   []sendJSON `json:"sends"`
}

type ladderErrorJSON struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ladderRef is the ladder a handoff's JSON names.
type ladderRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

func decodeAs[T any](t testing.TB, r resp, status int) T {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d, want %d: %s", r.Status, status, r.Body)
	}
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.Body)
	}
	return v
}

func (r resp) ladder(t testing.TB, status int) ladderJSON {
	t.Helper()
	return decodeAs[ladderJSON](t, r, status)
}

func (r resp) ladders(t testing.TB) []ladderJSON {
	t.Helper()
	out := decodeAs[struct {
		Ladders []ladderJSON `json:"ladders"`
	}](t, r, http.StatusOK)
	if out.Ladders == nil {
		t.Fatalf("ladders is null, want an array: %s", r.Body)
	}
	return out.Ladders
}

func (r resp) escalation(t testing.TB) escalationJSON {
	t.Helper()
	out := decodeAs[escalationJSON](t, r, http.StatusOK)
	if out.Sends == nil {
		t.Fatalf("sends is null, want an array: %s", r.Body)
	}
	return out
}

// ladderOf reads the ladder a handoff's JSON names (nil when absent).
func ladderOf(t testing.TB, r resp) *ladderRef {
	t.Helper()
	out := decodeAs[struct {
		Ladder *ladderRef `json:"ladder"`
	}](t, r, http.StatusOK)
	return out.Ladder
}

func putLadder(c *caller, name, src string, kv ...string) resp {
	c.t.Helper()
	return c.do("PUT", "/v1/ladders/"+name, src, kv...)
}

func createRaw(t testing.TB, in *testserver.Instance, body map[string]any) string {
	t.Helper()
	h := agentRaw(t, in).do("POST", "/v1/handoffs", body).handoff(t, http.StatusCreated)
	return h.ID
}

func inboxIDs(t testing.TB, c *caller) []string {
	t.Helper()
	return listIDs(c.do("GET", "/v1/inbox", nil).list(t))
}

// eventually polls cond every 25ms until it holds or within passes, then fails with what.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// auditEvents reads the organization's audit leaves through the API as c (a person) and decodes them.
func auditEvents(t testing.TB, c *caller) (events []map[string]any, raw [][]byte) {
	t.Helper()
	out := decodeAs[struct {
		Leaves []struct {
			Index int64  `json:"index"`
			Data  []byte `json:"data"`
		} `json:"leaves"`
	}](t, c.do("GET", "/v1/audit/leaves?limit=1000", nil), http.StatusOK)
	for _, l := range out.Leaves {
		var m map[string]any
		if err := json.Unmarshal(l.Data, &m); err != nil {
			t.Fatalf("leaf %d is not JSON: %v: %s", l.Index, err, l.Data)
		}
		events = append(events, m)
		raw = append(raw, l.Data)
	}
	return events, raw
}

// cheapOtherOrg is a second organization with an admin signed in and an agent, written straight to
// the store the way testserver seeds the first: newOtherOrg's org.Service.Create hashes a password at
// full cost, which takes seconds under -race.
func cheapOtherOrg(t testing.TB, in *testserver.Instance) otherOrg {
	t.Helper()
	ctx := context.Background()
	orgID := uuid.NewString()
	adminID := uuid.NewString()
	err := in.App.Store.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		if err := tx.CreateOrg(ctx, store.Org{ID: orgID, Name: "Globex", MaxTimeout: 24 * time.Hour, CreatedAt: time.Now()}); err != nil {
			return err
		}
		// Nobody signs in with a password here: the hash is a placeholder no password matches.
		return tx.CreateUser(ctx, store.User{ID: adminID, Email: "boss-" + randHex(4) + "@globex.test", Name: "Gil Globex",
			PasswordHash: "!", Role: store.RoleAdmin, Timezone: "UTC", Active: true, CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	return otherOrg{OrgID: orgID, AdminID: adminID, Session: session(t, in, orgID, adminID), Device: secondDevice(t, in, orgID)}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------------------------------------
// Ladders

// mainLadder is an organization's own ladder, put through the API. Its comment and step name are
// canaries: the audit log records the YAML's digest, never its text.
func mainLadder(wait string) string {
	return `# LADDER-CANARY-5e1d: comments are part of the source, never of the audit log
name: main
default: true
steps:
  - name: inbox-canary-step
    channels: [console]
    targets: [role:admin, role:member]
    wait: ` + wait + `
end: wait
`
}

// TestLadderAPI is the core flow, on every dialect: an admin puts a ladder (and a new version of it),
// everyone in the organization reads it, the audit log records the change by digest, new handoffs
// freeze the version in force while older ones keep theirs, the escalation shows each send, the
// console inbox holds pending handoffs until they are decided, and another organization sees none of it.
func TestLadderAPI(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		viewer := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Viewer.ID))
		agent := agentRaw(t, in)

		// Before any PUT: only the built-in ladder is in force, listed as such and frozen on.
		if ls := admin.do("GET", "/v1/ladders", nil).ladders(t); len(ls) != 1 || ls[0].Name != "builtin" || ls[0].Origin != "builtin" || !ls[0].Default {
			t.Fatalf("a fresh instance lists ladders: %+v", ls)
		}
		h0 := createRaw(t, in, map[string]any{"action": "shell.exec", "title": "before any ladder"})
		if l := ladderOf(t, agent.do("GET", "/v1/handoffs/"+h0, nil)); l == nil || *l != (ladderRef{"builtin", 0}) {
			t.Fatalf("handoff before any PUT: ladder %+v, want builtin v0", l)
		}

		v1 := mainLadder("10m")
		got := putLadder(admin, "main", v1).ladder(t, http.StatusOK)
		if got.Name != "main" || got.Version != 1 || got.Origin != "api" || !got.Default || got.Source != v1 || got.End != "wait" {
			t.Fatalf("PUT v1 = %+v", got)
		}
		if len(got.Steps) != 1 || got.Steps[0].Wait != "10m" || !slices.Equal(got.Steps[0].Channels, []string{"console"}) {
			t.Fatalf("PUT v1 steps = %+v", got.Steps)
		}
		h1 := createRaw(t, in, map[string]any{"action": "shell.exec", "title": "under v1"})

		v2 := mainLadder("20m")
		if got := putLadder(admin, "main", v2).ladder(t, http.StatusOK); got.Version != 2 || got.Source != v2 || got.Steps[0].Wait != "20m" {
			t.Fatalf("PUT v2 = %+v", got)
		}
		h2 := createRaw(t, in, map[string]any{"action": "shell.exec", "title": "under v2"})

		// The version in force is frozen onto each handoff when it is created.
		for _, tc := range []struct {
			id   string
			want ladderRef
		}{{h0, ladderRef{"builtin", 0}}, {h1, ladderRef{"main", 1}}, {h2, ladderRef{"main", 2}}} {
			for _, c := range []*caller{agent, member} {
				if l := ladderOf(t, c.do("GET", "/v1/handoffs/"+tc.id, nil)); l == nil || *l != tc.want {
					t.Errorf("handoff %s: ladder %+v, want %+v", tc.id, l, tc.want)
				}
			}
		}

		// Every person of the organization reads the ladders, with the YAML that was put.
		for _, c := range []*caller{admin, member, viewer} {
			ls := c.do("GET", "/v1/ladders", nil).ladders(t)
			if len(ls) != 1 || ls[0].Name != "main" || ls[0].Version != 2 || ls[0].Source != v2 || ls[0].Origin != "api" {
				t.Fatalf("GET /v1/ladders = %+v", ls)
			}
			if one := c.do("GET", "/v1/ladders/main", nil).ladder(t, http.StatusOK); one.Version != 2 || one.Source != v2 {
				t.Fatalf("GET /v1/ladders/main = %+v", one)
			}
			c.do("GET", "/v1/ladders/nope", nil).wantErr(t, http.StatusNotFound, "ladder_not_found")
		}
		agent.do("GET", "/v1/ladders", nil).wantErr(t, http.StatusForbidden, "people_only")
		agent.do("GET", "/v1/ladders/main", nil).wantErr(t, http.StatusForbidden, "people_only")

		// The audit log has one ladder.changed leaf per version: the digest of the YAML, not the YAML.
		events, raw := auditEvents(t, admin)
		var digests []string
		for _, e := range events {
			if e["type"] != "ladder.changed" {
				continue
			}
			actor, _ := e["actor"].(map[string]any)
			subject, _ := e["subject"].(map[string]any)
			details, _ := e["details"].(map[string]any)
			if actor["kind"] != "user" || actor["id"] != in.Admin.ID || actor["role"] != "admin" ||
				subject["kind"] != "ladder" || subject["id"] != "main" || e["channel"] != "api" {
				t.Errorf("ladder.changed leaf = %v", e)
			}
			digests = append(digests, fmt.Sprint(details["sha256"]))
		}
		if want := []string{sha256Hex(v1), sha256Hex(v2)}; !slices.Equal(digests, want) {
			t.Errorf("ladder.changed digests = %v, want %v", digests, want)
		}
		for _, leaf := range raw {
			for _, canary := range []string{"LADDER-CANARY", "inbox-canary-step", "role:admin", "steps", "wait"} {
				if bytes.Contains(leaf, []byte(canary)) {
					t.Errorf("an audit leaf quotes the ladder (%q): %s", canary, leaf)
				}
			}
		}

		// The console inbox: h1 and h2 reach admins and members once their console rung has run. The
		// bounds are generous for loaded CI machines; this takes well under a second on an idle one.
		filling := time.Now()
		eventually(t, 30*time.Second, "h1 and h2 in the admin's and the member's inbox", func() bool {
			a, m := inboxIDs(t, admin), inboxIDs(t, member)
			return slices.Contains(a, h1) && slices.Contains(a, h2) && slices.Contains(m, h1) && slices.Contains(m, h2)
		})
		eventually(t, 30*time.Second, "h2's console sends delivered", func() bool {
			e := agent.do("GET", "/v1/handoffs/"+h2+"/escalation", nil).escalation(t)
			return len(e.Sends) == 2 && e.Sends[0].State == "delivered" && e.Sends[1].State == "delivered"
		})
		t.Logf("console rungs ran within %v", time.Since(filling).Round(time.Millisecond))
		if a := inboxIDs(t, admin); len(a) < 2 || a[0] != h2 { // newest first
			t.Errorf("admin inbox %v, want h2 first", a)
		}
		if v := inboxIDs(t, viewer); len(v) != 0 {
			t.Errorf("the viewer's inbox holds %v: viewers are never notified", v)
		}
		agent.do("GET", "/v1/inbox", nil).wantErr(t, http.StatusForbidden, "people_only")
		if one := admin.do("GET", "/v1/inbox?limit=1", nil).list(t); len(one) != 1 {
			t.Errorf("limit=1 returned %d", len(one))
		}
		for _, bad := range []string{"0", "501", "x", "-1"} {
			admin.do("GET", "/v1/inbox?limit="+bad, nil).wantErr(t, http.StatusBadRequest, "invalid_limit")
		}

		// The escalation of h2: one console send per person who can decide, under v2.
		for _, c := range []*caller{agent, admin, member, viewer} {
			e := c.do("GET", "/v1/handoffs/"+h2+"/escalation", nil).escalation(t)
			if e.Ladder != "main" || e.Version != 2 || len(e.Sends) != 2 {
				t.Fatalf("escalation of h2 = %+v", e)
			}
			var targets []string
			for _, s := range e.Sends {
				if s.Climb != 0 || s.Step != 0 || s.Attempt != 0 || s.Channel != "console" || s.Provider != "builtin" ||
					s.State != "delivered" || s.Detail != "" || s.CreatedAt.IsZero() || s.UpdatedAt.Before(s.CreatedAt) {
					t.Errorf("send %+v", s)
				}
				targets = append(targets, s.Target)
			}
			slices.Sort(targets)
			want := []string{in.Admin.ID, in.Member.ID}
			if c == agent {
				want = []string{"person", "person"} // an agent learns how far it got, not whom it paged
			}
			slices.Sort(want)
			if !slices.Equal(targets, want) {
				t.Errorf("escalation targets %v, want admin and member %v", targets, want)
			}
		}
		if e := agent.do("GET", "/v1/handoffs/"+h0+"/escalation", nil).escalation(t); e.Ladder != "builtin" || e.Version != 0 {
			t.Errorf("escalation of h0 = %+v", e)
		}

		// Another organization, and another agent of this one, see nothing of it.
		other := cheapOtherOrg(t, in)
		otherAdmin := cookieRaw(t, in.URL, other.Session)
		for name, c := range map[string]*caller{"other org's person": otherAdmin, "other org's agent": bearer(t, in.URL, other.Device.Token),
			"another agent of the org": bearer(t, in.URL, secondDevice(t, in, in.OrgID).Token)} {
			t.Logf("escalation as %s", name)
			c.do("GET", "/v1/handoffs/"+h2+"/escalation", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		}
		agent.do("GET", "/v1/handoffs/not-a-uuid/escalation", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		if ls := otherAdmin.do("GET", "/v1/ladders", nil).ladders(t); len(ls) != 1 || ls[0].Name != "builtin" {
			t.Errorf("another organization lists our ladders: %+v", ls)
		}
		otherAdmin.do("GET", "/v1/ladders/main", nil).wantErr(t, http.StatusNotFound, "ladder_not_found")
		if ids := inboxIDs(t, otherAdmin); len(ids) != 0 {
			t.Errorf("another organization's inbox holds %v", ids)
		}
		// Its own ladder of the same name is its own version 1.
		if got := putLadder(otherAdmin, "main", v1).ladder(t, http.StatusOK); got.Version != 1 {
			t.Errorf("other org's first version = %d", got.Version)
		}
		if one := admin.do("GET", "/v1/ladders/main", nil).ladder(t, http.StatusOK); one.Version != 2 || one.Source != v2 {
			t.Errorf("our ladder changed with theirs: %+v", one)
		}

		// Deciding takes the handoff out of every inbox; the other stays.
		member.do("POST", "/v1/handoffs/"+h2+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
		for _, c := range []*caller{admin, member} {
			ids := inboxIDs(t, c)
			if slices.Contains(ids, h2) || !slices.Contains(ids, h1) {
				t.Errorf("inbox after deciding h2: %v (h1 %s, h2 %s)", ids, h1, h2)
			}
		}
		agent.do("POST", "/v1/handoffs/"+h1+"/cancel", nil).handoff(t, http.StatusOK)
		if ids := inboxIDs(t, admin); slices.Contains(ids, h1) {
			t.Errorf("a cancelled handoff stays in the inbox: %v", ids)
		}
		// The escalation outlives the decision.
		if e := admin.do("GET", "/v1/handoffs/"+h2+"/escalation", nil).escalation(t); len(e.Sends) != 2 {
			t.Errorf("escalation after the decision: %+v", e)
		}
	})
}

// TestLadderPutRefused: every way a PUT is refused, with its code, and none of them stores anything or
// writes to the audit log.
func TestLadderPutRefused(t *testing.T) {
	t.Parallel()
	in := start(t, "sqlite", nil)
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
	viewer := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Viewer.ID))
	agent := agentRaw(t, in)
	good := mainLadder("10m")
	mistakes := `name: main
steps:
  - channels: [console, pager]
    targets: [role:admin]
    wait: forever
    colour: red
`
	webhook := `name: main
steps:
  - channels: [webhook]
    targets: [webhook:teams]
    wait: 5m
`
	two := good + "---\n" + strings.Replace(good, "name: main", "name: second", 1)
	// Padding with a YAML comment keeps the ladder valid at any size.
	pad := func(n int) string { return good + "#" + strings.Repeat("x", n-len(good)-2) + "\n" }

	cases := []struct {
		name   string
		as     *caller
		ladder string
		body   string
		hdr    []string
		status int
		code   string
	}{
		{name: "member", as: member, body: good, status: 403, code: "admins_only"},
		{name: "viewer", as: viewer, body: good, status: 403, code: "admins_only"},
		{name: "agent", as: agent, body: good, status: 403, code: "people_only"},
		{name: "nobody", as: anon(t, in.URL), body: good, status: 401, code: "unauthenticated"},
		{name: "name mismatch", as: admin, ladder: "other", body: good, status: 400, code: "ladder_name_mismatch"},
		{name: "invalid path name", as: admin, ladder: "Main", body: good, status: 400, code: "ladder_name_mismatch"},
		{name: "mistakes", as: admin, body: mistakes, status: 400, code: "invalid_ladder"},
		{name: "yaml syntax", as: admin, body: "name: main\nsteps: [\n", status: 400, code: "invalid_ladder"},
		{name: "empty", as: admin, body: "", status: 400, code: "invalid_ladder"},
		{name: "two ladders", as: admin, body: two, status: 400, code: "invalid_ladder"},
		{name: "unknown webhook", as: admin, body: webhook, status: 400, code: "unknown_webhook"},
		{name: "over 256 KiB", as: admin, body: pad(escalation.MaxLadderBytes + 1), status: 413, code: "body_too_large"},
		{name: "far over 256 KiB", as: admin, body: pad(1 << 20), status: 413, code: "body_too_large"},
		// Cookie-authenticated writes carry the CSRF guard: JSON content type, same origin.
		{name: "csrf: no content type", as: admin, body: good, hdr: []string{"Content-Type", ""}, status: 403, code: "csrf"},
		{name: "csrf: text/plain", as: admin, body: good, hdr: []string{"Content-Type", "text/plain"}, status: 403, code: "csrf"},
		{name: "csrf: form", as: admin, body: good, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 403, code: "csrf"},
		{name: "csrf: foreign origin", as: admin, body: good, hdr: []string{"Origin", "https://evil.example"}, status: 403, code: "csrf"},
		{name: "csrf: null origin", as: admin, body: good, hdr: []string{"Origin", "null"}, status: 403, code: "csrf"},
	}
	for _, tc := range cases {
		name := tc.ladder
		if name == "" {
			name = "main"
		}
		var r resp
		if tc.body == "" {
			r = tc.as.do("PUT", "/v1/ladders/"+name, nil, append([]string{"Content-Type", "application/json"}, tc.hdr...)...)
		} else {
			r = putLadder(tc.as, name, tc.body, tc.hdr...)
		}
		if r.Status != tc.status {
			t.Errorf("%s: got %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
			continue
		}
		e := r.wantErr(t, tc.status, tc.code)
		if tc.status != 413 && strings.Contains(e.Message, "CANARY") {
			t.Errorf("%s: the message quotes the body: %s", tc.name, e.Message)
		}
	}

	// Every mistake is listed with its position, so they can all be fixed in one pass.
	e := putLadder(admin, "main", mistakes).wantErr(t, 400, "invalid_ladder")
	var details struct {
		Errors []ladderErrorJSON `json:"errors"`
	}
	if err := json.Unmarshal(e.Details, &details); err != nil {
		t.Fatalf("details: %v: %s", err, e.Details)
	}
	want := []ladderErrorJSON{
		{Line: 3, Column: 25, Path: "steps[0].channels[1]"},
		{Line: 5, Column: 11, Path: "steps[0].wait"},
		{Line: 6, Column: 5, Path: "steps[0].colour"},
	}
	if len(details.Errors) != len(want) {
		t.Fatalf("details.errors = %+v, want %d mistakes", details.Errors, len(want))
	}
	for i, w := range want {
		g := details.Errors[i]
		if g.Line != w.Line || g.Column != w.Column || g.Path != w.Path || g.Message == "" {
			t.Errorf("mistake %d = %+v, want line %d column %d path %s", i, g, w.Line, w.Column, w.Path)
		}
	}
	if !strings.Contains(e.Message, "3") {
		t.Errorf("message %q does not count the mistakes", e.Message)
	}
	// A syntax error knows its line.
	e = putLadder(admin, "main", "name: main\nsteps: [\n").wantErr(t, 400, "invalid_ladder")
	if err := json.Unmarshal(e.Details, &details); err != nil || len(details.Errors) == 0 || details.Errors[0].Line == 0 {
		t.Errorf("syntax error details: %s", e.Details)
	}

	// Nothing refused was stored or audited.
	if ls := admin.do("GET", "/v1/ladders", nil).ladders(t); len(ls) != 1 || ls[0].Name != "builtin" {
		t.Fatalf("a refused PUT stored a ladder: %+v", ls)
	}
	events, _ := auditEvents(t, admin)
	for _, ev := range events {
		if ev["type"] == "ladder.changed" {
			t.Fatalf("a refused PUT was audited: %v", ev)
		}
	}

	// The bounds are inclusive: exactly 256 KiB is a ladder.
	exact := pad(escalation.MaxLadderBytes)
	if len(exact) != escalation.MaxLadderBytes {
		t.Fatalf("pad: %d bytes", len(exact))
	}
	if got := putLadder(admin, "main", exact).ladder(t, http.StatusOK); got.Version != 1 || got.Source != exact {
		t.Fatalf("exactly %d bytes: version %d", escalation.MaxLadderBytes, got.Version)
	}
	// The JSON content type with a charset and our own origin pass the CSRF guard.
	if got := putLadder(admin, "main", good, "Content-Type", "application/json; charset=utf-8", "Origin", in.URL).ladder(t, http.StatusOK); got.Version != 2 {
		t.Fatalf("same-origin PUT: version %d", got.Version)
	}

	// Ladders are read and written at /v1/ladders/{name} only.
	for _, tc := range []struct{ method, path string }{
		{"POST", "/v1/ladders"}, {"DELETE", "/v1/ladders/main"}, {"POST", "/v1/ladders/main"}, {"PATCH", "/v1/ladders/main"},
		{"POST", "/v1/inbox"}, {"POST", "/v1/handoffs/" + "00000000-0000-0000-0000-000000000000" + "/escalation"},
	} {
		agent.do(tc.method, tc.path, nil).wantErr(t, http.StatusMethodNotAllowed, "method_not_allowed")
	}
}

// TestLadderSecondDefault: an organization has one default ladder at most. A second one is the
// admin's mistake (400), and the corrected YAML must then be accepted and be what is in force (a
// rolled-back put must leave nothing behind, not even a cached parse).
func TestLadderSecondDefault(t *testing.T) {
	t.Parallel()
	in := start(t, "sqlite", nil)
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	putLadder(admin, "main", mainLadder("10m")).ladder(t, http.StatusOK)
	second := strings.Replace(mainLadder("10m"), "name: main", "name: second", 1)
	putLadder(admin, "second", second).wantErr(t, http.StatusBadRequest, "invalid_ladder")

	// main stops being the default, then second is put again, corrected: not a default either.
	notDefault := strings.Replace(mainLadder("10m"), "default: true\n", "match: {actions: [db.*]}\n", 1)
	putLadder(admin, "main", notDefault).ladder(t, http.StatusOK)
	fixed := strings.Replace(second, "default: true\n", "match: {actions: [deploy.*]}\n", 1)
	if got := putLadder(admin, "second", fixed).ladder(t, http.StatusOK); got.Version != 1 || got.Default || got.Source != fixed {
		t.Fatalf("the corrected ladder = %+v", got)
	}
	for _, l := range admin.do("GET", "/v1/ladders", nil).ladders(t) {
		if l.Default && l.Name != "builtin" {
			t.Errorf("ladder %s v%d is in force as the default, but no YAML put says so", l.Name, l.Version)
		}
	}
	for action, want := range map[string]ladderRef{"deploy.web": {"second", 1}, "db.migrate": {"main", 2}, "shell.exec": {"builtin", 0}} {
		h := createRaw(t, in, map[string]any{"action": action, "title": "routing " + action})
		if l := ladderOf(t, admin.do("GET", "/v1/handoffs/"+h, nil)); l == nil || *l != want {
			t.Errorf("%s: ladder %+v, want %+v", action, l, want)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Webhook bridges

// bridgePost is one post a fake bridge received, after it checked it.
type bridgePost struct {
	id   string
	body []byte
	msg  webhook.Message
	raw  map[string]any
}

// bridge is a webhook receiver that checks every post strictly, the way a real one must: method, path,
// content type, Standard Webhooks signature, and a JSON body with no unknown fields.
type bridge struct {
	srv    *httptest.Server
	path   string
	secret []byte

	mu       sync.Mutex
	failures int // answer this many first posts with 500; -1: all
	posts    []bridgePost
	problems []string
}

func newBridge(t *testing.T, secret []byte, path string, failures int) *bridge {
	t.Helper()
	b := &bridge{path: path, secret: secret, failures: failures}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		defer b.mu.Unlock()
		fail := func(format string, args ...any) {
			b.problems = append(b.problems, fmt.Sprintf(format, args...))
			w.WriteHeader(http.StatusBadRequest)
		}
		if r.Method != http.MethodPost || r.URL.Path != b.path || r.URL.RawQuery != "key=bridge-credential" {
			fail("%s %s", r.Method, r.URL.RequestURI())
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			fail("Content-Type %q", ct)
			return
		}
		if err := auth.VerifyWebhook(b.secret, r.Header, body, time.Now(), auth.DefaultWebhookTolerance); err != nil {
			fail("signature: %v", err)
			return
		}
		p := bridgePost{id: r.Header.Get(auth.WebhookIDHeader), body: body}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p.msg); err != nil {
			fail("body: %v: %s", err, body)
			return
		}
		_ = json.Unmarshal(body, &p.raw)
		b.posts = append(b.posts, p)
		if b.failures != 0 {
			if b.failures > 0 {
				b.failures--
			}
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *bridge) url() string { return b.srv.URL + b.path + "?key=bridge-credential" }

func (b *bridge) received() []bridgePost {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.posts)
}

func (b *bridge) find(typ, handoffID string) (bridgePost, bool) {
	for _, p := range b.received() {
		if p.msg.Type == typ && p.msg.Handoff.ID == handoffID {
			return p, true
		}
	}
	return bridgePost{}, false
}

func (b *bridge) check(t *testing.T, name string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("bridge %s refused a post: %s", name, p)
	}
}

func newWebhookSecret(t testing.TB) (config.Secret, []byte) {
	t.Helper()
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	s := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	key, err := config.WebhookSecretBytes(s)
	if err != nil {
		t.Fatal(err)
	}
	return config.Secret(s), key
}

func writeLadders(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const bridgeLadders = `name: bridged
match:
  labels: {route: good}
steps:
  - name: bridges
    channels: [webhook, console]
    targets: [webhook:bridge, role:admin]
    wait: 10m
end: wait
---
name: broken
match:
  labels: {route: bad}
steps:
  - channels: [webhook]
    targets: [webhook:flaky, webhook:down]
    wait: 10m
end: wait
`

// TestWebhookEscalation: a ladder posts to configured bridges, signed; a bridge learns the action,
// risk, gist and console link and nothing else the agent wrote; it hears the outcome once a person
// decides; and a bridge that fails is retried with the same webhook-id until the send fails for good,
// which the escalation shows.
func TestWebhookEscalation(t *testing.T) {
	t.Parallel()
	secret, key := newWebhookSecret(t)
	good := newBridge(t, key, "/hooks/good", 0)
	flaky := newBridge(t, key, "/hooks/flaky", 1)
	down := newBridge(t, key, "/hooks/down", -1)
	dir := writeLadders(t, map[string]string{"bridges.yaml": bridgeLadders})
	in := testserver.Start(t, testserver.Options{Configure: func(c *config.Config) {
		c.Escalation.LaddersDir = dir
		c.Escalation.Webhooks = []config.Secret{config.Secret("bridge=" + good.url()), config.Secret("flaky=" + flaky.url()),
			config.Secret("down=" + down.url())}
		c.Escalation.WebhookSecret = secret
	}}).Seed(t)
	admin := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Admin.ID))
	member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
	agent := agentRaw(t, in)
	began := time.Now()

	// File ladders are listed with their origin and without source.
	ls := admin.do("GET", "/v1/ladders", nil).ladders(t)
	if len(ls) != 3 || ls[0].Name != "bridged" || ls[1].Name != "broken" || ls[2].Name != "builtin" {
		t.Fatalf("ladders %+v", ls)
	}
	for _, l := range ls[:2] {
		if l.Version != 0 || !strings.HasPrefix(l.Origin, "file:") || l.Source != "" {
			t.Errorf("file ladder %+v", l)
		}
	}
	// A configured bridge may be targeted by a PUT; an unknown one may not.
	put := strings.NewReplacer("name: bridged", "name: mine", "route: good", "route: mine").Replace(strings.SplitN(bridgeLadders, "---", 2)[0])
	putLadder(admin, "mine", put).ladder(t, http.StatusOK)
	putLadder(admin, "mine", strings.Replace(put, "webhook:bridge", "webhook:nope", 1)).wantErr(t, http.StatusBadRequest, "unknown_webhook")

	// The failing bridges first: their retries take seconds.
	bad := createRaw(t, in, map[string]any{"action": "shell.exec", "title": "to broken bridges", "labels": map[string]string{"route": "bad"}})

	const payloadCanary = "PAYLOAD-CANARY-4f2e9a"
	titleSecret := "AKIAIOSFODNN7CANARY1" // an AWS key id: the redactor removes it from the gist
	summarySecret := "sk_live_CANARYCANARY1234abcd"
	hid := createRaw(t, in, map[string]any{"action": "deploy.web", "title": "Deploy payments with " + titleSecret,
		"summary": "uses " + summarySecret, "labels": map[string]string{"route": "good", "env": "prod"},
		"payload": map[string]string{"kind": "command", "content": "curl -H 'X-Token: " + payloadCanary + "' https://deploy.example"}})
	view := decodeAs[struct {
		Risk       string    `json:"risk"`
		Gist       string    `json:"gist"`
		ConsoleURL string    `json:"console_url"`
		ExpiresAt  time.Time `json:"expires_at"`
	}](t, agent.do("GET", "/v1/handoffs/"+hid, nil), http.StatusOK)

	var esc bridgePost
	eventually(t, 30*time.Second, "the bridge is told of the handoff", func() bool {
		var ok bool
		esc, ok = good.find("handoff.escalated", hid)
		return ok
	})
	m := esc.msg
	if esc.id != hid+"/0.0.webhook.webhook:bridge.0" {
		t.Errorf("webhook-id %q", esc.id)
	}
	if m.Ladder != "bridged" || m.Climb != 0 || m.Step != 0 || m.Handoff.Action != "deploy.web" || m.Handoff.Risk != view.Risk ||
		m.Handoff.Gist != view.Gist || m.Handoff.ConsoleURL != view.ConsoleURL || m.Handoff.Status != "pending" ||
		m.Handoff.ExpiresAt == nil || !m.Handoff.ExpiresAt.Equal(view.ExpiresAt) {
		t.Errorf("escalated message %+v, want the handoff's action, risk %s, gist %q, console_url %s", m, view.Risk, view.Gist, view.ConsoleURL)
	}
	if m.Handoff.Risk == "" || m.Handoff.Gist == "" || !strings.Contains(m.Text, view.Gist) || !strings.Contains(m.Text, view.ConsoleURL) {
		t.Errorf("text %q lacks the gist or the console link", m.Text)
	}
	for _, k := range []string{"title", "summary", "payload", "options", "labels", "token"} {
		if _, ok := esc.raw[k]; ok {
			t.Errorf("message carries %q", k)
		}
		if h, _ := esc.raw["handoff"].(map[string]any); h[k] != nil {
			t.Errorf("message's handoff carries %q", k)
		}
	}
	// The bridge has answered; the engine records the send as sent right after.
	eventually(t, 30*time.Second, "the escalation shows the webhook sent", func() bool {
		e := agent.do("GET", "/v1/handoffs/"+hid+"/escalation", nil).escalation(t)
		if e.Ladder != "bridged" || e.Version != 0 {
			t.Fatalf("escalation %+v", e)
		}
		return slices.ContainsFunc(e.Sends, func(s sendJSON) bool {
			return s.Channel == "webhook" && s.Target == "webhook:bridge" && s.Provider == "builtin" && s.State == "sent" && s.Detail == ""
		})
	})

	// A decision reaches the bridge as handoff.finished, naming who approved.
	member.do("POST", "/v1/handoffs/"+hid+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
	var fin bridgePost
	eventually(t, 30*time.Second, "the bridge hears the outcome", func() bool {
		var ok bool
		fin, ok = good.find("handoff.finished", hid)
		return ok
	})
	if fin.id != esc.id+"/final" || fin.msg.Handoff.Status != "approved" || !strings.Contains(fin.msg.Text, "Approved by "+in.Member.Name) {
		t.Errorf("finished message (webhook-id %q) = %+v", fin.id, fin.msg)
	}

	// The bridge answering 500 once is retried with the same webhook-id, then sent. The one that always
	// answers 500 stays sending (no detail) while River retries, and ends failed: provider_error on the
	// last of escalation.send's attempts (3).
	sawSending := false
	var e escalationJSON
	eventually(t, 90*time.Second, "the flaky bridge's send is sent and the down bridge's failed", func() bool {
		e = admin.do("GET", "/v1/handoffs/"+bad+"/escalation", nil).escalation(t)
		var f, d sendJSON
		for _, s := range e.Sends {
			switch s.Target {
			case "webhook:flaky":
				f = s
			case "webhook:down":
				d = s
			}
		}
		if d.State == "sending" && d.Detail == "provider_error" && len(down.received()) > 0 {
			sawSending = true
		}
		return f.State == "sent" && d.State == "failed"
	})
	t.Logf("the failing bridge's send ended after %v", time.Since(began).Round(time.Millisecond))
	for _, s := range e.Sends {
		switch s.Target {
		case "webhook:flaky":
			if s.Provider != "builtin" || s.Detail != "retried" || s.Attempt != 0 {
				t.Errorf("flaky send %+v", s)
			}
		case "webhook:down":
			if s.Detail != "provider_error" || s.Attempt != 0 {
				t.Errorf("down send %+v", s)
			}
		default:
			t.Errorf("unexpected send %+v", s)
		}
	}
	if !sawSending {
		t.Errorf("never saw the failing send as sending between attempts")
	}
	for name, br := range map[string]struct {
		b    *bridge
		want int
	}{"flaky": {flaky, 2}, "down": {down, 3}} {
		posts := br.b.received()
		if len(posts) != br.want {
			t.Errorf("%s bridge got %d posts, want %d", name, len(posts), br.want)
		}
		for _, p := range posts {
			if p.id != bad+"/0.0.webhook.webhook:"+name+".0" {
				t.Errorf("%s bridge: webhook-id %q changed between retries", name, p.id)
			}
		}
	}
	if got := admin.do("GET", "/v1/handoffs/"+bad, nil).handoff(t, http.StatusOK); got.Status != "pending" {
		t.Errorf("a failed bridge ended the handoff: %s", got.Status)
	}

	// No bridge ever saw the payload, or the secrets the redactor took out of the title and summary.
	for name, b := range map[string]*bridge{"bridge": good, "flaky": flaky, "down": down} {
		b.check(t, name)
		for _, p := range b.received() {
			for _, canary := range []string{payloadCanary, titleSecret, summarySecret, "CANARY", "deploy.example"} {
				if bytes.Contains(p.body, []byte(canary)) {
					t.Errorf("bridge %s received %q: %s", name, canary, p.body)
				}
			}
		}
	}
}

// TestWebhookLadderNeedsConfiguredWebhook: an instance whose ladders target a bridge that
// escalation.webhooks does not define refuses to start, before it opens the database, saying which
// ladder and which webhook, and never quoting a configured bridge's URL.
func TestWebhookLadderNeedsConfiguredWebhook(t *testing.T) {
	t.Parallel()
	secret, _ := newWebhookSecret(t)
	ladder := `name: paging
steps:
  - channels: [webhook]
    targets: [webhook:missing]
    wait: 5m
`
	for _, tc := range []struct {
		name     string
		webhooks []config.Secret
	}{
		{"none configured", nil},
		{"another configured", []config.Secret{"teams=https://bridge.example/hooks/SECRET-URL-TOKEN"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Escalation.LaddersDir = writeLadders(t, map[string]string{"paging.yaml": ladder})
			cfg.Escalation.Webhooks = tc.webhooks
			if tc.webhooks != nil {
				cfg.Escalation.WebhookSecret = secret
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			a, err := app.New(ctx, &cfg, testdb.Discard, app.Options{})
			if err == nil {
				_ = a.Close(ctx)
				t.Fatal("the app started")
			}
			msg := err.Error()
			for _, s := range []string{"paging", "webhook:missing", "escalation.webhooks"} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not name %q", msg, s)
				}
			}
			if strings.Contains(msg, "SECRET-URL-TOKEN") || strings.Contains(msg, "bridge.example") {
				t.Errorf("error %q quotes a webhook URL", msg)
			}
			// Refused before the database is opened, so nothing is created or migrated.
			if entries, err := os.ReadDir(cfg.DataDir); err != nil || len(entries) > 0 {
				t.Errorf("data dir after the refusal: %v %v", entries, err)
			}
		})
	}
}
