package console

import (
	"net/http"

	"github.com/ony-ai/ony/problem"
)

// ssoLogin starts single sign-on; the provider's redirect comes back to ssoCallback.
func (c *Console) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if c.d.SSO == nil {
		c.notFound(w, r)
		return
	}
	if err := c.d.SSO.Begin(w, r, safeNext(r.URL.Query().Get("next"))); err != nil {
		c.ssoFailed(w, r, err)
	}
}

// ssoCallback finishes it: a session cookie and the page the person set out for, or a page saying
// in plain words why not.
func (c *Console) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if c.d.SSO == nil {
		c.notFound(w, r)
		return
	}
	tok, exp, next, err := c.d.SSO.Finish(w, r, c.clientAddr(r))
	if err != nil {
		c.ssoFailed(w, r, err)
		return
	}
	c.setSession(w, tok, exp)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// ssoFailed shows a problem's own message (written for people); anything else is logged and shown as
// a failure without its details.
func (c *Console) ssoFailed(w http.ResponseWriter, r *http.Request, err error) {
	p, ok := problem.As(err)
	if !ok {
		c.fail(w, r, nil, err)
		return
	}
	status := p.Kind.Status()
	if status == http.StatusInternalServerError || status == http.StatusNotFound {
		status = http.StatusForbidden
	}
	c.render(w, r, status, "sso_error", nil, map[string]any{"Title": "Single sign-on", "Message": p.Message})
}
