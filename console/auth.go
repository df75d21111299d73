package console

import (
	"net/http"

	"github.com/ony-ai/ony/auth/session"
	"net/url"
	"time"
)

func (c *Console) setSession(w http.ResponseWriter, token string, expires time.Time) {
	// SameSite=Lax so a console link opened from chat or mail arrives signed in; writes are guarded by
	// CrossOriginProtection and the per-form token instead.
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: token, Path: "/", Expires: expires,
		HttpOnly: true, Secure: c.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request, _ *req) error {
	c.render(w, r, http.StatusOK, "login", nil, map[string]any{"Title": "Sign in", "Next": safeNext(r.URL.Query().Get("next"))})
	return nil
}

// loginSubmit signs in with email and password. Login-CSRF is what CrossOriginProtection (in
// headers) stops here: there is no session yet to bind a token to.
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request, _ *req) error {
	next := safeNext(r.PostFormValue("next"))
	email := r.PostFormValue("email")
	in, err := c.d.Sessions.LoginWith(r.Context(), session.Credentials{Email: email, Password: r.PostFormValue("password"),
		ClientAddr: c.clientAddr(r), UserAgent: r.UserAgent()})
	if err != nil {
		if c.d.TOTPLogin != nil {
			if ch, ok := c.d.TOTPLogin.Challenge(err); ok {
				c.render(w, r, http.StatusOK, "login_totp", nil, map[string]any{"Title": "Sign in", "Next": next, "Challenge": ch})
				return nil
			}
		}
		msg, ok := problemMessage(err)
		if !ok {
			return err
		}
		status := http.StatusUnauthorized
		if p := statusFor(err); p != 0 {
			status = p
		}
		c.render(w, r, status, "login", nil, map[string]any{"Title": "Sign in", "Next": next, "Email": email, "Error": msg})
		return nil
	}
	c.setSession(w, in.Token, in.ExpiresAt)
	return redirect(w, r, next)
}

func (c *Console) loginTOTPSubmit(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.TOTPLogin == nil {
		c.notFound(w, r)
		return nil
	}
	next := safeNext(r.PostFormValue("next"))
	ch := r.PostFormValue("challenge")
	tok, exp, err := c.d.TOTPLogin.Finish(r.Context(), ch, r.PostFormValue("totp"), c.clientAddr(r), r.UserAgent())
	if err != nil {
		msg, ok := problemMessage(err)
		if !ok {
			return err
		}
		c.render(w, r, http.StatusUnauthorized, "login_totp", nil, map[string]any{"Title": "Sign in", "Next": next, "Challenge": ch, "Error": msg})
		return nil
	}
	c.setSession(w, tok, exp)
	return redirect(w, r, next)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := c.d.Sessions.Logout(r.Context(), q.P.OrgID, q.Token); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	return redirect(w, r, "/console/login?next="+url.QueryEscape("/console/inbox"))
}
