package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/config"
	"github.com/ony-ai/ony/server"
	"github.com/ony-ai/ony/store"
)

// TestChangePassword covers POST /v1/auth/password: a signed-in person replaces their own password
// with the current one, the new one passes the policy, their other sessions end while this one stays,
// the audit log records it, and wrong current passwords count against the sign-in limit.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, d string) {
		in := start(t, d, func(c *config.Config) { c.Auth.LoginAttemptsPerAccount = 3 })
		mia := addUser(t, in, in.OrgID, store.RoleMember, "Mia Member")
		a := anon(t, in.URL)
		signIn := func(email, pw string) (*caller, resp) {
			r := a.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": pw})
			for _, c := range (&http.Response{Header: r.Header}).Cookies() {
				if c.Name == server.SessionCookie {
					return cookieRaw(t, in.URL, c.Value), r
				}
			}
			return nil, r
		}
		this, r := signIn(mia.Email, in.Password)
		other, _ := signIn(mia.Email, in.Password)
		if this == nil || other == nil {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		change := func(c *caller, current, next string) resp {
			return c.do("POST", "/v1/auth/password", map[string]string{"current_password": current, "new_password": next})
		}
		const next = "a new and long passphrase"

		agentRaw(t, in).do("POST", "/v1/auth/password", map[string]string{"current_password": "x", "new_password": next}).
			wantErr(t, http.StatusBadRequest, "not_a_session")
		anon(t, in.URL).do("POST", "/v1/auth/password", map[string]string{"current_password": "x", "new_password": next}).
			wantErr(t, http.StatusUnauthorized, "unauthenticated")
		this.do("POST", "/v1/auth/password", `current_password=x`, "Content-Type", "text/plain").wantErr(t, http.StatusForbidden, "csrf")
		this.do("POST", "/v1/auth/password", map[string]string{"new_password": next}).wantErr(t, http.StatusBadRequest, "invalid_password_change")
		this.do("POST", "/v1/auth/password", `{"current_password":"x","new_password":"y","also":1}`).wantErr(t, http.StatusBadRequest, "unknown_field")
		change(this, in.Password, "short").wantErr(t, http.StatusBadRequest, "weak_password")
		change(this, in.Password, in.Password).wantErr(t, http.StatusBadRequest, "same_password")
		change(this, "not the password", next).wantErr(t, http.StatusForbidden, "wrong_password")

		ok := change(this, in.Password, next)
		if ok.Status != http.StatusOK {
			t.Fatalf("change: %d %s", ok.Status, ok.Body)
		}
		if m := ok.object(t); m["sessions_ended"] != float64(1) {
			t.Errorf("answer %v, want sessions_ended 1", m)
		}
		if strings.Contains(string(ok.Body), next) {
			t.Errorf("the answer echoes the password: %s", ok.Body)
		}
		if me := this.do("GET", "/v1/auth/me", nil); me.Status != http.StatusOK {
			t.Errorf("the session that changed the password ended: %d %s", me.Status, me.Body)
		}
		other.do("GET", "/v1/auth/me", nil).wantErr(t, http.StatusUnauthorized, "session_expired")
		if _, r := signIn(mia.Email, in.Password); r.Status != http.StatusUnauthorized {
			t.Errorf("the old password still signs in: %d", r.Status)
		}
		if c, r := signIn(mia.Email, next); c == nil {
			t.Errorf("the new password does not sign in: %d %s", r.Status, r.Body)
		}

		// Recorded in the organization's log, without the password.
		var last audit.Event
		if _, err := in.App.Audit.Sequence(context.Background(), in.App.Store, in.OrgID); err != nil {
			t.Fatal(err)
		}
		err := in.App.Store.InOrg(context.Background(), in.OrgID, func(tx store.OrgTx) error {
			head, err := tx.AuditHead(context.Background())
			if err != nil {
				return err
			}
			leaves, err := tx.AuditLeaves(context.Background(), head.Size-1, 1)
			if err != nil || len(leaves) != 1 {
				return err
			}
			if strings.Contains(string(leaves[0].Data), next) {
				t.Errorf("the audit leaf holds the password: %s", leaves[0].Data)
			}
			last, err = audit.Decode(leaves[0].Data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if last.Type != audit.MemberPasswordChanged || last.Actor.ID != mia.ID || last.Actor.Kind != "user" || last.Actor.Role != "member" ||
			last.Subject != (audit.Subject{Kind: "user", ID: mia.ID}) {
			t.Errorf("last audit event %+v, want member.password_changed by and about %s", last, mia.ID)
		}

		// Guessing the current password with a stolen session meets the sign-in limit (3 per account).
		vic := addUser(t, in, in.OrgID, store.RoleViewer, "Vic Viewer")
		vs, r := signIn(vic.Email, in.Password)
		if vs == nil {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		for range 3 {
			change(vs, "a guess", next).wantErr(t, http.StatusForbidden, "wrong_password")
		}
		change(vs, in.Password, next).wantErr(t, http.StatusTooManyRequests, "too_many_attempts")
	})
}
