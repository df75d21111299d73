package console

// Phone verification on the profile (issue 15): a number the person set themself stays unverified,
// and unreached, until they type back the code Ony texts to it.

import (
	"net/http"
	"strings"
)

// phoneSend texts a verification code to the caller's own unverified number.
func (c *Console) phoneSend(w http.ResponseWriter, r *http.Request, q *req) error {
	return c.phoneStep(w, r, q, func() (string, error) {
		err := c.d.PhoneVerify.Send(r.Context(), q.P.OrgID, q.P.ID)
		return "Ony texted a 6-digit code to your phone. Type it below; it works for 10 minutes.", err
	})
}

// phoneVerify checks the code typed back.
func (c *Console) phoneVerify(w http.ResponseWriter, r *http.Request, q *req) error {
	return c.phoneStep(w, r, q, func() (string, error) {
		err := c.d.PhoneVerify.Confirm(r.Context(), q.P.OrgID, q.P.ID, strings.TrimSpace(r.PostFormValue("code")))
		return "Your phone number is verified: Ony may now text and call it.", err
	})
}

// phoneStep runs one step and shows the profile again with its outcome; a refusal (wrong code, too
// many tries, no SMS provider) is shown on the page with its status.
func (c *Console) phoneStep(w http.ResponseWriter, r *http.Request, q *req, step func() (string, error)) error {
	if c.d.PhoneVerify == nil {
		c.notFound(w, r)
		return nil
	}
	notice, err := step()
	data, derr := c.profileData(r, q)
	if derr != nil {
		return derr
	}
	if err != nil {
		return c.formError(w, r, q, "profile", data, err)
	}
	data["Notice"] = notice
	c.render(w, r, http.StatusOK, "profile", q, data)
	return nil
}
