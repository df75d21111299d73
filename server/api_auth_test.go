package server_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ony-ai/ony/auth"
	"github.com/ony-ai/ony/client"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/internal/testserver"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
)

// TestAgentAuth covers bearer-token authentication of agents.
func TestAgentAuth(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		h := mustCreate(t, in.Agent(t), basicRequest("auth target"))
		unknown, err := auth.NewToken(auth.DeviceTokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		routes := []struct{ method, path string }{
			{"POST", "/v1/handoffs"},
			{"GET", "/v1/handoffs"},
			{"GET", "/v1/handoffs/" + h.ID},
			{"GET", "/v1/handoffs/" + h.ID + "/wait?timeout=1s"},
			{"POST", "/v1/handoffs/" + h.ID + "/cancel"},
			{"POST", "/v1/handoffs/" + h.ID + "/decide"},
			{"GET", "/v1/auth/me"},
			{"POST", "/v1/auth/logout"},
		}
		cases := []struct {
			name, authz, code string
		}{
			// No device token sent: say how to send one.
			{"no header", "", "unauthenticated"},
			{"basic scheme", "Basic dXNlcjpwYXNz", "unauthenticated"},
			// A Bearer token sent but no use, however it is wrong: say the token is the problem.
			{"bearer without token", "Bearer", "invalid_token"},
			{"bearer empty", "Bearer ", "invalid_token"},
			{"not a device token", "Bearer abc123", "invalid_token"},
			{"session id as bearer", "Bearer " + strings.Replace(in.DeviceToken, auth.DeviceTokenPrefix, auth.SessionIDPrefix, 1), "invalid_token"},
			{"truncated token", "Bearer " + in.DeviceToken[:len(in.DeviceToken)-1], "invalid_token"},
			{"token with junk", "Bearer " + in.DeviceToken + "x", "invalid_token"},
			{"unknown token", "Bearer " + unknown.Plain, "invalid_token"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				for _, rt := range routes {
					r := anon(t, in.URL).do(rt.method, rt.path, `{"option":"approve","action":"a","title":"t"}`, "Authorization", tc.authz)
					r.wantErr(t, http.StatusUnauthorized, tc.code)
					challenge := r.Header.Get("WWW-Authenticate")
					if !strings.HasPrefix(challenge, "Bearer ") || strings.Contains(challenge, `error="invalid_token"`) != (tc.code == "invalid_token") {
						t.Errorf("%s %s: WWW-Authenticate %q", rt.method, rt.path, challenge)
					}
				}
			})
		}
		// The scheme is case-insensitive.
		bearerLower := anon(t, in.URL).do("GET", "/v1/handoffs/"+h.ID, nil, "Authorization", "bearer "+in.DeviceToken)
		bearerLower.handoff(t, http.StatusOK)

		// Who the device is.
		me := agentRaw(t, in).do("GET", "/v1/auth/me", nil)
		if me.Status != http.StatusOK {
			t.Fatalf("me: %d %s", me.Status, me.Body)
		}
		m := me.object(t)
		if m["kind"] != "device" || m["user_id"] != in.DeviceID || m["org_id"] != in.OrgID || m["name"] != "test agent" {
			t.Errorf("device me = %v", m)
		}

		// A revoked device is refused from the next request on.
		dev2 := secondDevice(t, in, in.OrgID)
		c2 := bearer(t, in.URL, dev2.Token)
		h2 := c2.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": "before revocation"}).handoff(t, http.StatusCreated)
		err = in.App.Store.InOrg(context.Background(), in.OrgID, func(tx store.OrgTx) error {
			return tx.RevokeDevice(context.Background(), dev2.DeviceID, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		c2.do("GET", "/v1/handoffs/"+h2.ID, nil).wantErr(t, http.StatusUnauthorized, "invalid_token")
		c2.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": "after"}).wantErr(t, http.StatusUnauthorized, "invalid_token")
		c2.do("POST", "/v1/handoffs/"+h2.ID+"/cancel", nil).wantErr(t, http.StatusUnauthorized, "invalid_token")
		// The first device is unaffected.
		agentRaw(t, in).do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK)
	})
}

// TestDeviceScope: an agent cannot decide, and sees only its own handoffs.
func TestDeviceScope(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		agent := agentRaw(t, in)
		h := mustCreate(t, in.Agent(t), basicRequest("mine"))

		for _, opt := range []string{"approve", "deny"} {
			agent.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": opt}).wantErr(t, http.StatusForbidden, "people_only")
		}

		dev2 := secondDevice(t, in, in.OrgID)
		other := bearer(t, in.URL, dev2.Token)
		theirs := other.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": "theirs"}).handoff(t, http.StatusCreated)
		other.do("GET", "/v1/handoffs/"+h.ID, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		other.do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=1s", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		other.do("POST", "/v1/handoffs/"+h.ID+"/cancel", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		if ids := listIDs(other.do("GET", "/v1/handoffs", nil).list(t)); !slices.Equal(ids, []string{theirs.ID}) {
			t.Errorf("second device lists %v, want only its own %s", ids, theirs.ID)
		}
		if ids := listIDs(agent.do("GET", "/v1/handoffs", nil).list(t)); !slices.Equal(ids, []string{h.ID}) {
			t.Errorf("first device lists %v, want only %s", ids, h.ID)
		}
		// People see both.
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		if ids := listIDs(member.do("GET", "/v1/handoffs", nil).list(t)); !slices.Equal(ids, []string{theirs.ID, h.ID}) {
			t.Errorf("member lists %v", ids)
		}
		// Nothing changed the first device's handoff.
		if g := agent.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "pending" {
			t.Errorf("status %q", g.Status)
		}
		// People do not create handoffs.
		member.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": "by a person"}).wantErr(t, http.StatusForbidden, "agents_only")
		// Unknown and malformed ids are simply not found.
		for _, id := range []string{"00000000-0000-7000-8000-000000000000", "not-a-uuid", "..%2f..%2fetc"} {
			agent.do("GET", "/v1/handoffs/"+id, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
			member.do("POST", "/v1/handoffs/"+id+"/decide", map[string]string{"option": "approve"}).wantErr(t, http.StatusNotFound, "handoff_not_found")
		}
	})
}

func listIDs(hs []client.Handoff) []string {
	ids := make([]string, len(hs))
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

// TestOrgIsolation: another organization's agent and people can neither see nor touch org A's handoff.
func TestOrgIsolation(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		h := mustCreate(t, in.Agent(t), basicRequest("org A only"))
		b := newOtherOrg(t, in)
		devB := bearer(t, in.URL, b.Device.Token)
		personB := cookieRaw(t, in.URL, b.Session)

		// B's own handoff, so B's lists are not trivially empty.
		hb := devB.do("POST", "/v1/handoffs", map[string]string{"action": "a.b", "title": "org B"}).handoff(t, http.StatusCreated)

		devB.do("GET", "/v1/handoffs/"+h.ID, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		devB.do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=1s", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		devB.do("POST", "/v1/handoffs/"+h.ID+"/cancel", map[string]string{"reason": "mine now"}).wantErr(t, http.StatusNotFound, "handoff_not_found")
		devB.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).wantErr(t, http.StatusForbidden, "people_only")

		personB.do("GET", "/v1/handoffs/"+h.ID, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		personB.do("GET", "/v1/handoffs/"+h.ID+"/wait?timeout=1s", nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		personB.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).wantErr(t, http.StatusNotFound, "handoff_not_found")
		personB.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "deny"}).wantErr(t, http.StatusNotFound, "handoff_not_found")
		personB.do("POST", "/v1/handoffs/"+h.ID+"/cancel", map[string]string{}).wantErr(t, http.StatusNotFound, "handoff_not_found")

		for _, c := range []*caller{devB, personB} {
			for _, q := range []string{"", "?status=pending", "?limit=500"} {
				if ids := listIDs(c.do("GET", "/v1/handoffs"+q, nil).list(t)); !slices.Equal(ids, []string{hb.ID}) {
					t.Errorf("org B lists %v, want only %s", ids, hb.ID)
				}
			}
		}
		// And org A does not see B's.
		memberA := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		if ids := listIDs(memberA.do("GET", "/v1/handoffs", nil).list(t)); !slices.Equal(ids, []string{h.ID}) {
			t.Errorf("org A lists %v", ids)
		}
		memberA.do("GET", "/v1/handoffs/"+hb.ID, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")
		agentRaw(t, in).do("GET", "/v1/handoffs/"+hb.ID, nil).wantErr(t, http.StatusNotFound, "handoff_not_found")

		// A's handoff is untouched and still decidable by A.
		if g := memberA.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "pending" || g.Decision != nil {
			t.Fatalf("org A's handoff changed: %+v", g)
		}
		memberA.do("POST", "/v1/handoffs/"+h.ID+"/decide", map[string]string{"option": "approve"}).handoff(t, http.StatusOK)
	})
}

// TestLogin signs in for real (PBKDF2 and all), checks the cookie, /me, logout, wrong passwords,
// unknown emails and both rate limits. Account limit 3, address limit 4.
func TestLogin(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, func(c *config.Config) {
			c.Auth.LoginAttemptsPerAccount = 3
			c.Auth.LoginAttemptsPerAddress = 4
		})
		// People with a cheaper password hash than the fixtures': this test checks passwords for real.
		admin := addUser(t, in, in.OrgID, store.RoleAdmin, "Ada Admin")
		member := addUser(t, in, in.OrgID, store.RoleMember, "Mia Member")
		viewer := addUser(t, in, in.OrgID, store.RoleViewer, "Vic Viewer")
		a := anon(t, in.URL)
		login := func(email, password string) resp {
			return a.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": password})
		}

		// 1. A good login.
		ok := login(strings.ToUpper(admin.Email), in.Password) // emails are case-insensitive
		if ok.Status != http.StatusOK {
			t.Fatalf("login: %d %s", ok.Status, ok.Body)
		}
		var cookie *http.Cookie
		for _, c := range (&http.Response{Header: ok.Header}).Cookies() {
			if c.Name == server.SessionCookie {
				cookie = c
			}
		}
		if cookie == nil {
			t.Fatalf("no session cookie in %v", ok.Header.Values("Set-Cookie"))
		}
		if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Value == "" {
			t.Errorf("cookie attributes: %+v", cookie)
		}
		if cookie.Secure {
			t.Errorf("cookie is Secure on an http:// public URL")
		}
		if !cookie.Expires.After(time.Now().Add(11 * time.Hour)) {
			t.Errorf("cookie expires %v, want about the 12h session TTL", cookie.Expires)
		}
		body := ok.object(t)
		if body["user_id"] != admin.ID || body["email"] != admin.Email || body["role"] != "admin" || body["kind"] != "user" ||
			body["org_id"] != in.OrgID || body["name"] != "Ada Admin" {
			t.Errorf("login body = %v", body)
		}
		if strings.Contains(string(ok.Body), cookie.Value) || strings.Contains(string(ok.Body), "password") {
			t.Errorf("login body leaks the session or password: %s", ok.Body)
		}

		sess := cookieRaw(t, in.URL, cookie.Value)
		me := sess.do("GET", "/v1/auth/me", nil)
		if me.Status != http.StatusOK {
			t.Fatalf("me: %d %s", me.Status, me.Body)
		}
		if m := me.object(t); m["user_id"] != admin.ID || m["role"] != "admin" || m["kind"] != "user" || m["name"] != "Ada Admin" || m["org_id"] != in.OrgID {
			t.Errorf("me = %v", m)
		}
		// The cookie works for the API, and logout (a write) needs JSON like any cookie write.
		sess.do("GET", "/v1/handoffs", nil).list(t)
		sess.do("POST", "/v1/auth/logout", nil, "Content-Type", "").wantErr(t, http.StatusForbidden, "csrf")
		out := sess.do("POST", "/v1/auth/logout", "", "Content-Type", "application/json")
		if out.Status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", out.Status, out.Body)
		}
		cleared := false
		for _, c := range (&http.Response{Header: out.Header}).Cookies() {
			cleared = cleared || (c.Name == server.SessionCookie && c.MaxAge < 0)
		}
		if !cleared {
			t.Errorf("logout does not clear the cookie: %v", out.Header.Values("Set-Cookie"))
		}
		sess.do("GET", "/v1/auth/me", nil).wantErr(t, http.StatusUnauthorized, "session_expired")
		sess.do("GET", "/v1/handoffs", nil).wantErr(t, http.StatusUnauthorized, "session_expired")
		sess.do("POST", "/v1/auth/logout", "", "Content-Type", "application/json").wantErr(t, http.StatusUnauthorized, "session_expired")
		// A device has no session to end.
		agentRaw(t, in).do("POST", "/v1/auth/logout", nil).wantErr(t, http.StatusBadRequest, "not_a_session")

		// Malformed logins are refused before any password work and count for nothing.
		a.do("POST", "/v1/auth/login", map[string]string{"email": "not an email", "password": "x"}).wantErr(t, http.StatusBadRequest, "invalid_login")
		a.do("POST", "/v1/auth/login", map[string]string{"email": member.Email}).wantErr(t, http.StatusBadRequest, "invalid_login")
		a.do("POST", "/v1/auth/login", `{"email":"a@b.c","password":"x","remember":true}`).wantErr(t, http.StatusBadRequest, "unknown_field")
		a.do("POST", "/v1/auth/login", `{"email":`).wantErr(t, http.StatusBadRequest, "invalid_json")

		// 2. Three wrong passwords for the member use up the account's attempts (and 3 of the address's 4).
		var wrongMsg string
		for i := range 3 {
			e := login(member.Email, "wrong password "+strconv.Itoa(i)).wantErr(t, http.StatusUnauthorized, "invalid_credentials")
			if wrongMsg == "" {
				wrongMsg = e.Message
			} else if e.Message != wrongMsg {
				t.Errorf("messages differ: %q vs %q", e.Message, wrongMsg)
			}
		}
		// 3. The fourth attempt is refused even with the right password.
		limited := login(member.Email, in.Password)
		limited.wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
		checkRetryAfter(t, limited)
		if len((&http.Response{Header: limited.Header}).Cookies()) != 0 {
			t.Errorf("a refused login set a cookie")
		}

		// 4. An unknown email is refused with the same message as a wrong password (4th address attempt).
		e := login("nobody-"+randHex(4)+"@acme.test", in.Password).wantErr(t, http.StatusUnauthorized, "invalid_credentials")
		if e.Message != wrongMsg {
			t.Errorf("unknown email says %q, wrong password says %q", e.Message, wrongMsg)
		}
		if strings.Contains(e.Message, "nobody") {
			t.Errorf("message echoes the email")
		}

		// 5. The address has now used its 4 attempts: another account, right password, is refused too.
		byAddr := login(viewer.Email, in.Password)
		byAddr.wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
		checkRetryAfter(t, byAddr)
	})
}

func checkRetryAfter(t *testing.T, r resp) {
	t.Helper()
	ra := r.Header.Get("Retry-After")
	secs, err := strconv.Atoi(ra)
	if err != nil || secs < 1 || secs > 15*60 {
		t.Errorf("Retry-After = %q, want 1..900 seconds", ra)
	}
}

// TestCSRF: cookie-authenticated writes must be JSON and same-origin; bearer requests are not
// subject to it, and cookie reads are not either.
func TestCSRF(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, nil)
		h := mustCreate(t, in.Agent(t), basicRequest("csrf target"))
		member := cookieRaw(t, in.URL, session(t, in, in.OrgID, in.Member.ID))
		decide := "/v1/handoffs/" + h.ID + "/decide"
		cancel := "/v1/handoffs/" + h.ID + "/cancel"
		body := `{"option":"approve"}`
		refused := []struct {
			name string
			path string
			hdr  []string
		}{
			{"no content type", decide, []string{"Content-Type", ""}},
			{"form", decide, []string{"Content-Type", "application/x-www-form-urlencoded"}},
			{"text/plain", decide, []string{"Content-Type", "text/plain"}},
			{"multipart", decide, []string{"Content-Type", "multipart/form-data; boundary=x"}},
			{"foreign origin", decide, []string{"Origin", "https://evil.example"}},
			{"foreign port", decide, []string{"Origin", "http://127.0.0.1:1"}},
			{"null origin", decide, []string{"Origin", "null"}},
			{"cancel without JSON", cancel, []string{"Content-Type", ""}},
			{"cancel foreign origin", cancel, []string{"Origin", "https://evil.example"}},
		}
		for _, tc := range refused {
			member.do("POST", tc.path, body, tc.hdr...).wantErr(t, http.StatusForbidden, "csrf")
		}
		if g := member.do("GET", "/v1/handoffs/"+h.ID, nil).handoff(t, http.StatusOK); g.Status != "pending" {
			t.Fatalf("a refused request changed the handoff: %s", g.Status)
		}
		// Bearer requests have no ambient credential, so no CSRF check.
		agentRaw(t, in).do("POST", cancel, nil, "Origin", "https://evil.example").handoff(t, http.StatusOK)

		h2 := mustCreate(t, in.Agent(t), basicRequest("csrf target 2"))
		// Same origin, with a charset parameter: accepted.
		g := member.do("POST", "/v1/handoffs/"+h2.ID+"/decide", body, "Origin", in.URL, "Content-Type", "application/json; charset=utf-8").handoff(t, http.StatusOK)
		if g.Status != "approved" {
			t.Fatalf("status %q", g.Status)
		}
	})
}

// TestLoginBehindProxy: behind a trusted proxy each client has its own address bucket, so one person's
// failures do not lock out everyone the proxy serves; an X-Forwarded-For from anyone else, or an entry
// a client wrote itself to the left of what the proxy appended, does not buy a fresh bucket.
func TestLoginBehindProxy(t *testing.T) {
	t.Parallel()
	const perAddress = 3
	limits := func(trusted ...string) func(*config.Config) {
		return func(c *config.Config) {
			c.TrustedProxies = trusted
			c.Auth.LoginAttemptsPerAccount = 1000 // only the address bucket is under test
			c.Auth.LoginAttemptsPerAddress = perAddress
		}
	}
	// fail sends a wrong password for a fresh unknown email with the given X-Forwarded-For.
	fail := func(t *testing.T, in *testserver.Instance, xff string) resp {
		return anon(t, in.URL).do("POST", "/v1/auth/login",
			map[string]string{"email": "nobody-" + randHex(4) + "@acme.test", "password": "wrong"}, "X-Forwarded-For", xff)
	}
	spend := func(t *testing.T, in *testserver.Instance, xff func(i int) string) {
		t.Helper()
		for i := range perAddress {
			fail(t, in, xff(i)).wantErr(t, http.StatusUnauthorized, "invalid_credentials")
		}
		fail(t, in, xff(perAddress)).wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
	}

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		in := start(t, "sqlite", limits("127.0.0.0/8")) // the test's requests come from 127.0.0.1: the "proxy"
		spend(t, in, func(int) string { return "203.0.113.1" })
		// Another client behind the same proxy, and the proxy's own address, still have their attempts.
		fail(t, in, "203.0.113.2").wantErr(t, http.StatusUnauthorized, "invalid_credentials")
		fail(t, in, "").wantErr(t, http.StatusUnauthorized, "invalid_credentials")
		// A forged left-most entry does not help the locked-out client: the proxy appended its real address.
		fail(t, in, "198.51.100.9, 203.0.113.1").wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
		// Nor does varying it from the first attempt.
		spend(t, in, func(i int) string { return "198.51.100." + strconv.Itoa(i+1) + ", 203.0.113.3" })
	})
	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		in := start(t, "sqlite", limits("10.0.0.0/8")) // 127.0.0.1 is not a trusted proxy
		spend(t, in, func(i int) string { return "203.0.113." + strconv.Itoa(i+1) })
	})
}
