package server_test

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/internal/testhttp"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/org"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
)

// TestMain raises the default -parallel. These tests spend most of their time waiting on timers,
// long-polls and databases, not on the CPU, so the default (GOMAXPROCS, i.e. 2 in CI) would serialise
// the slow ones (expiry, callback retries) and stretch the wall time. An explicit -parallel wins.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "8")
	}
	auth.UseTestWorkFactor()
	os.Exit(m.Run())
}

// eachDialect runs f once per database dialect, in parallel.
func eachDialect(t *testing.T, f func(t *testing.T, dialect string)) {
	t.Helper()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			f(t, d)
		})
	}
}

// start runs a seeded instance of dialect; configure may be nil.
func start(t *testing.T, dialect string, configure func(*config.Config)) *testserver.Instance {
	t.Helper()
	return testserver.Start(t, testserver.Options{Dialect: dialect, Configure: configure}).Seed(t)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP

var rawHTTP = &http.Client{Transport: testhttp.Client.Transport, Timeout: 90 * time.Second}

// resp is a raw answer.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

type apiError struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details"`
}

// caller sends raw requests to one instance with one identity.
type caller struct {
	t    testing.TB
	base string
	hdr  http.Header
}

func anon(t testing.TB, base string) *caller { return &caller{t: t, base: base, hdr: http.Header{}} }

func bearer(t testing.TB, base, token string) *caller {
	c := anon(t, base)
	c.hdr.Set("Authorization", "Bearer "+token)
	return c
}

func agentRaw(t testing.TB, in *testserver.Instance) *caller {
	return bearer(t, in.URL, in.DeviceToken)
}

func cookieRaw(t testing.TB, base, session string) *caller {
	c := anon(t, base)
	c.hdr.Set("Cookie", server.SessionCookie+"="+session)
	return c
}

// do sends body (nil: none; string or []byte: as is; anything else: JSON-encoded). Bodies are sent as
// application/json unless the extra header pairs say otherwise; a pair with an empty value removes the
// header.
func (c *caller) do(method, path string, body any, kv ...string) resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatalf("request: %v", err)
	}
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			req.Header.Del(kv[i])
		} else {
			req.Header.Set(kv[i], kv[i+1])
		}
	}
	res, err := rawHTTP.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: data}
}

// wantErr asserts an error answer of status and code and returns it.
func (r resp) wantErr(t testing.TB, status int, code string) apiError {
	t.Helper()
	var eb struct {
		Error apiError `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &eb); err != nil {
		t.Fatalf("error body is not JSON (status %d): %v: %s", r.Status, err, r.Body)
	}
	if r.Status != status || eb.Error.Code != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.Status, eb.Error.Code, eb.Error.Message, status, code)
	}
	if eb.Error.Message == "" {
		t.Fatalf("error %q has no message", code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type = %q", ct)
	}
	return eb.Error
}

// handoff asserts status and decodes a handoff view.
func (r resp) handoff(t testing.TB, status int) client.Handoff {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %d, want %d: %s", r.Status, status, r.Body)
	}
	var h client.Handoff
	if err := json.Unmarshal(r.Body, &h); err != nil {
		t.Fatalf("decode handoff: %v: %s", err, r.Body)
	}
	return h
}

func (r resp) list(t testing.TB) []client.Handoff {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("list: got %d: %s", r.Status, r.Body)
	}
	var out struct {
		Handoffs []client.Handoff `json:"handoffs"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("decode list: %v: %s", err, r.Body)
	}
	if out.Handoffs == nil {
		t.Fatalf("list: handoffs is null, want an array: %s", r.Body)
	}
	return out.Handoffs
}

func (r resp) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode object: %v: %s", err, r.Body)
	}
	return m
}

// apiCode extracts the code from a client error.
func apiCode(err error) (int, string) {
	if ce, ok := err.(*client.Error); ok {
		return ce.Status, ce.Code
	}
	return 0, ""
}

func wantClientErr(t testing.TB, err error, status int, code string) {
	t.Helper()
	if s, c := apiCode(err); s != status || c != code {
		t.Fatalf("got error %v, want %d %s", err, status, code)
	}
}

// ---------------------------------------------------------------------------------------------
// Identities

// session signs a user in without a password check (see testserver.Instance.Session).
func session(t testing.TB, in *testserver.Instance, orgID, userID string) string {
	t.Helper()
	return in.Session(t, orgID, userID)
}

// person is a client signed in as u (of the instance's org) through a session cookie.
func person(t testing.TB, in *testserver.Instance, u testserver.User) *client.Client {
	t.Helper()
	return in.Person(t, u)
}

// secondDevice issues another agent token in orgID.
func secondDevice(t testing.TB, in *testserver.Instance, orgID string) org.CreatedDevice {
	t.Helper()
	d, err := org.Service{Store: in.App.Store, Audit: in.App.Audit}.CreateDevice(context.Background(), audit.Actor{Kind: "system", ID: "test"}, orgID, "other agent")
	if err != nil {
		t.Fatalf("create device: %v", err)
	}
	return d
}

// otherOrg is a second organization on the instance's store, with its admin signed in and a device.
type otherOrg struct {
	OrgID, AdminID, Session string
	Device                  org.CreatedDevice
}

func newOtherOrg(t testing.TB, in *testserver.Instance) otherOrg {
	t.Helper()
	ctx := context.Background()
	o, err := org.Service{Store: in.App.Store, Audit: in.App.Audit}.Create(ctx, audit.Actor{Kind: "system", ID: "test"}, org.NewOrg{Name: "Globex", AdminEmail: "boss-" + randHex(4) + "@globex.test",
		AdminName: "Gil Globex", Password: "another correct horse staple"})
	if err != nil {
		t.Fatalf("create org: %v", err)
	}
	return otherOrg{OrgID: o.OrgID, AdminID: o.AdminID, Session: session(t, in, o.OrgID, o.AdminID),
		Device: secondDevice(t, in, o.OrgID)}
}

// cheapHash is testserver.Password hashed at the lowest work factor auth accepts (100,000), so the
// login tests can afford several real password checks.
var cheapHash = sync.OnceValue(func() string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, testserver.Password, salt, 100000, 32)
	if err != nil {
		panic(err)
	}
	enc := base64.RawStdEncoding
	return "$pbkdf2-sha256$i=100000$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key)
})

// addUser adds an active person with testserver.Password (cheaply hashed) to orgID.
func addUser(t testing.TB, in *testserver.Instance, orgID string, role store.Role, name string) testserver.User {
	t.Helper()
	u := testserver.User{ID: uuid.NewString(), Email: "p-" + randHex(4) + "@acme.test", Name: name}
	err := in.App.Store.InOrg(context.Background(), orgID, func(tx store.OrgTx) error {
		return tx.CreateUser(context.Background(), store.User{ID: u.ID, Email: u.Email, Name: name, PasswordHash: cheapHash(),
			Role: role, Timezone: "UTC", Active: true, CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatalf("add user: %v", err)
	}
	return u
}

// ---------------------------------------------------------------------------------------------
// Fixtures

func basicRequest(title string) client.CreateRequest {
	return client.CreateRequest{Action: "shell.exec", Title: title}
}

func mustCreate(t testing.TB, c *client.Client, r client.CreateRequest) *client.Handoff {
	t.Helper()
	h, _, err := c.Create(context.Background(), r, "")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if h.Status != client.StatusPending {
		t.Fatalf("created status %q", h.Status)
	}
	return h
}
