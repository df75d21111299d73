package console

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ony-ai/ony/auth/session"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

// The pages of this file run on the optional seams (seams.go); without one the page says so.

func (c *Console) registerSkeletons(h func(string, http.Handler)) {
	h("GET /console/team", c.authed(anyRole, c.team))
	h("POST /console/team/invite", c.authed(adminOnly, c.teamInvite))
	h("POST /console/team/{id}/role", c.authed(adminOnly, c.teamRole))
	h("POST /console/team/{id}/deactivate", c.authed(adminOnly, c.teamActive(false)))
	h("POST /console/team/{id}/reactivate", c.authed(adminOnly, c.teamActive(true)))

	h("GET /console/settings", c.authed(adminOnly, c.settings))
	h("POST /console/settings", c.authed(adminOnly, c.settingsSubmit))
	h("POST /console/settings/erase", c.authed(adminOnly, c.eraseOrg))

	h("GET /console/profile", c.authed(anyRole, c.profile))
	h("POST /console/profile", c.authed(anyRole, c.profileSubmit))
	h("POST /console/profile/password", c.authed(anyRole, c.passwordSubmit))
	h("POST /console/profile/chat/{kind}/{op}", c.authed(anyRole, c.chatSubmit))
	h("POST /console/profile/phone/send", c.authed(anyRole, c.phoneSend))
	h("POST /console/profile/phone/verify", c.authed(anyRole, c.phoneVerify))
	h("POST /console/profile/totp/begin", c.authed(anyRole, c.totpBegin))
	h("POST /console/profile/totp/confirm", c.authed(anyRole, c.totpConfirm))
	h("POST /console/profile/totp/disable", c.authed(anyRole, c.totpDisable))

	h("GET /console/sessions", c.authed(anyRole, c.sessions))
	h("POST /console/sessions/{id}/revoke", c.authed(anyRole, c.sessionRevoke))

	h("GET /console/invite/{code}", c.public(c.invitePage))
	h("POST /console/invite/{code}", c.public(c.inviteSubmit))
	h("GET /console/forgot", c.public(c.forgotPage))
	h("POST /console/forgot", c.public(c.forgotSubmit))
	h("GET /console/reset/{code}", c.public(c.resetPage))
	h("POST /console/reset/{code}", c.public(c.resetSubmit))
}

// formError re-renders page with a problem's message, or hands anything else to fail.
func (c *Console) formError(w http.ResponseWriter, r *http.Request, q *req, page string, data map[string]any, err error) error {
	msg, ok := problemMessage(err)
	if !ok {
		return err
	}
	data["Error"] = msg
	c.render(w, r, statusFor(err), page, q, data)
	return nil
}

var roles = []store.Role{store.RoleAdmin, store.RoleMember, store.RoleViewer}

func (c *Console) teamData(r *http.Request, q *req) (map[string]any, error) {
	data := map[string]any{"Title": "Team", "Roles": roles, "Configured": c.d.Team != nil}
	if c.d.Team == nil {
		return data, nil
	}
	ms, err := c.d.Team.Members(r.Context(), q.P.OrgID)
	if err != nil {
		return nil, err
	}
	data["Members"] = ms
	return data, nil
}

func (c *Console) team(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.teamData(r, q)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "team", q, data)
	return nil
}

func (c *Console) teamInvite(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.Team == nil {
		c.notFound(w, r)
		return nil
	}
	inv, err := c.d.Team.Invite(r.Context(), q.P.OrgID, q.P.ID, r.PostFormValue("email"), store.Role(r.PostFormValue("role")))
	data, derr := c.teamData(r, q)
	if derr != nil {
		return derr
	}
	if err != nil {
		return c.formError(w, r, q, "team", data, err)
	}
	data["Invitation"] = inv
	c.render(w, r, http.StatusOK, "team", q, data)
	return nil
}

func (c *Console) teamRole(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.Team == nil {
		c.notFound(w, r)
		return nil
	}
	if err := c.d.Team.SetRole(r.Context(), q.P.OrgID, q.P.ID, r.PathValue("id"), store.Role(r.PostFormValue("role"))); err != nil {
		return err
	}
	return redirect(w, r, "/console/team")
}

func (c *Console) teamActive(active bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, q *req) error {
		if c.d.Team == nil {
			c.notFound(w, r)
			return nil
		}
		f := c.d.Team.Deactivate
		if active {
			f = c.d.Team.Reactivate
		}
		if err := f(r.Context(), q.P.OrgID, q.P.ID, r.PathValue("id")); err != nil {
			return err
		}
		return redirect(w, r, "/console/team")
	}
}

func (c *Console) settingsData(r *http.Request, q *req) (map[string]any, error) {
	data := map[string]any{"Title": "Settings", "Configured": c.d.Settings != nil, "Risks": []string{"low", "medium", "high", "critical"}}
	if c.d.Settings != nil {
		s, err := c.d.Settings.Settings(r.Context(), q.P.OrgID)
		if err != nil {
			return nil, err
		}
		on := map[string]bool{}
		for _, x := range s.StepUpRisks {
			on[x] = true
		}
		data["S"], data["StepUpOn"] = s, on
	}
	if c.d.Eraser != nil {
		name, err := c.d.Eraser.OrgName(r.Context(), q.P.OrgID)
		if err != nil {
			return nil, err
		}
		data["Erase"], data["OrgName"] = true, name
		if c.d.TOTP != nil {
			on, err := c.d.TOTP.Enrolled(r.Context(), q.P.OrgID, q.P.ID)
			if err != nil {
				return nil, err
			}
			data["TOTPOn"] = on
		}
	}
	if c.d.Providers != nil {
		ps, err := c.d.Providers.Providers(r.Context(), q.P.OrgID)
		if err != nil {
			return nil, err
		}
		data["Providers"] = ps
	}
	return data, nil
}

func (c *Console) settings(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.settingsData(r, q)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "settings", q, data)
	return nil
}

func (c *Console) settingsSubmit(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.Settings == nil {
		c.notFound(w, r)
		return nil
	}
	_ = r.ParseForm()
	s := OrgSettings{StepUpRisks: r.PostForm["stepup"]}
	if v := strings.TrimSpace(r.PostFormValue("retention")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			data, derr := c.settingsData(r, q)
			if derr != nil {
				return derr
			}
			return c.formError(w, r, q, "settings", data, problem.New(problem.Invalid, "invalid_retention", "retention is a number of days (empty keeps payloads)"))
		}
		s.PayloadRetentionDays = n
	}
	if err := c.d.Settings.UpdateSettings(r.Context(), q.P.OrgID, q.P.ID, s); err != nil {
		data, derr := c.settingsData(r, q)
		if derr != nil {
			return derr
		}
		return c.formError(w, r, q, "settings", data, err)
	}
	return redirect(w, r, "/console/settings")
}

func (c *Console) profileData(r *http.Request, q *req) (map[string]any, error) {
	data := map[string]any{"Title": "Profile", "Configured": c.d.Profile != nil, "TOTPConfigured": c.d.TOTP != nil,
		"PhoneVerify": c.d.PhoneVerify != nil}
	if c.d.Profile != nil {
		p, err := c.d.Profile.Profile(r.Context(), q.P.OrgID, q.P.ID)
		if err != nil {
			return nil, err
		}
		data["P"] = p
	}
	if c.d.TOTP != nil {
		on, err := c.d.TOTP.Enrolled(r.Context(), q.P.OrgID, q.P.ID)
		if err != nil {
			return nil, err
		}
		data["TOTPOn"] = on
	}
	if c.d.ChatLinks != nil {
		accts, err := c.d.ChatLinks.Accounts(r.Context(), q.P.OrgID, q.P.ID)
		if err != nil {
			return nil, err
		}
		data["Chats"] = accts
	}
	return data, nil
}

// chatSubmit links or unlinks one of the caller's chat accounts: op is link (a one-time code to use
// in the app), email (Slack finds them by their email) or unlink.
func (c *Console) chatSubmit(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.ChatLinks == nil {
		c.notFound(w, r)
		return nil
	}
	kind, op := r.PathValue("kind"), r.PathValue("op")
	var (
		start  LinkStart
		err    error
		notice string
	)
	switch op {
	case "link":
		start, err = c.d.ChatLinks.StartLink(r.Context(), q.P.OrgID, q.P.ID, kind)
	case "email":
		err = c.d.ChatLinks.LinkByEmail(r.Context(), q.P.OrgID, q.P.ID, kind)
		notice = "Linked: Ony found you in " + kind + " by your email."
	case "unlink":
		err = c.d.ChatLinks.Unlink(r.Context(), q.P.OrgID, q.P.ID, kind)
		notice = "Unlinked. Ony no longer reaches you on " + kind + ", and its buttons no longer decide as you."
	default:
		c.notFound(w, r)
		return nil
	}
	data, derr := c.profileData(r, q)
	if derr != nil {
		return derr
	}
	if err != nil {
		return c.formError(w, r, q, "profile", data, err)
	}
	if op == "link" {
		data["LinkStart"] = start
		data["LinkKind"] = kind
	} else {
		data["Notice"] = notice
	}
	c.render(w, r, http.StatusOK, "profile", q, data)
	return nil
}

func (c *Console) profile(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.profileData(r, q)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("saved") != "" {
		data["Notice"] = "Profile saved."
	}
	c.render(w, r, http.StatusOK, "profile", q, data)
	return nil
}

func (c *Console) profileSubmit(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.Profile == nil {
		c.notFound(w, r)
		return nil
	}
	p := ProfileInfo{Name: r.PostFormValue("name"), Timezone: r.PostFormValue("timezone"),
		QuietStart: r.PostFormValue("quiet_start"), QuietEnd: r.PostFormValue("quiet_end"),
		Phone: strings.TrimSpace(r.PostFormValue("phone")), RemovePhone: r.PostFormValue("remove_phone") != ""}
	if err := c.d.Profile.UpdateProfile(r.Context(), q.P.OrgID, q.P.ID, p); err != nil {
		data, derr := c.profileData(r, q)
		if derr != nil {
			return derr
		}
		return c.formError(w, r, q, "profile", data, err)
	}
	return redirect(w, r, "/console/profile?saved=1")
}

// passwordSubmit changes the caller's password through the session service; other sessions end.
func (c *Console) passwordSubmit(w http.ResponseWriter, r *http.Request, q *req) error {
	p := session.Principal{OrgID: q.P.OrgID, Kind: store.ActorUser, ID: q.P.ID, Name: q.P.Name, Role: q.P.Role}
	ended, err := c.d.Sessions.ChangePassword(r.Context(), p, q.Token, r.PostFormValue("current"), r.PostFormValue("new"), c.clientAddr(r))
	data, derr := c.profileData(r, q)
	if derr != nil {
		return derr
	}
	if err != nil {
		return c.formError(w, r, q, "profile", data, err)
	}
	data["Notice"] = "Password changed; " + strconv.Itoa(ended) + " other session(s) ended."
	c.render(w, r, http.StatusOK, "profile", q, data)
	return nil
}

func (c *Console) totpBegin(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.TOTP == nil {
		c.notFound(w, r)
		return nil
	}
	account := q.P.Name
	if c.d.Profile != nil {
		if p, err := c.d.Profile.Profile(r.Context(), q.P.OrgID, q.P.ID); err == nil && p.Email != "" {
			account = p.Email
		}
	}
	e, err := c.d.TOTP.Begin(r.Context(), q.P.OrgID, q.P.ID, account)
	data, derr := c.profileData(r, q)
	if derr != nil {
		return derr
	}
	if err != nil {
		return c.formError(w, r, q, "profile", data, err)
	}
	// A data: URL keeps the QR image (which encodes the secret) out of any cache or log.
	data["QR"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG))
	data["Secret"] = e.Secret
	c.render(w, r, http.StatusOK, "profile", q, data)
	return nil
}

func (c *Console) totpConfirm(w http.ResponseWriter, r *http.Request, q *req) error {
	return c.totpChange(w, r, q, "TOTP is on.", func() error {
		return c.d.TOTP.Confirm(r.Context(), q.P.OrgID, q.P.ID, strings.TrimSpace(r.PostFormValue("totp")))
	})
}

func (c *Console) totpDisable(w http.ResponseWriter, r *http.Request, q *req) error {
	return c.totpChange(w, r, q, "TOTP is off.", func() error {
		return c.d.TOTP.Disable(r.Context(), q.P.OrgID, q.P.ID, strings.TrimSpace(r.PostFormValue("totp")))
	})
}

func (c *Console) totpChange(w http.ResponseWriter, r *http.Request, q *req, notice string, f func() error) error {
	if c.d.TOTP == nil {
		c.notFound(w, r)
		return nil
	}
	err := f()
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

func (c *Console) sessions(w http.ResponseWriter, r *http.Request, q *req) error {
	data := map[string]any{"Title": "Sessions", "Configured": c.d.SessionList != nil}
	if c.d.SessionList != nil {
		ss, err := c.d.SessionList.List(r.Context(), q.P.OrgID, q.P.ID, q.Token)
		if err != nil {
			return err
		}
		data["Sessions"] = ss
	}
	c.render(w, r, http.StatusOK, "sessions", q, data)
	return nil
}

func (c *Console) sessionRevoke(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.SessionList == nil {
		c.notFound(w, r)
		return nil
	}
	if err := c.d.SessionList.Revoke(r.Context(), q.P.OrgID, q.P.ID, r.PathValue("id")); err != nil {
		return err
	}
	return redirect(w, r, "/console/sessions")
}

func (c *Console) invitePage(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.Invites == nil {
		c.notFound(w, r)
		return nil
	}
	info, err := c.d.Invites.InviteInfo(r.Context(), r.PathValue("code"))
	if err != nil {
		if _, ok := problemMessage(err); ok {
			c.notFound(w, r) // an expired, used or unknown code: one answer
			return nil
		}
		return err
	}
	c.render(w, r, http.StatusOK, "invite", nil, map[string]any{"Title": "Join " + info.OrgName, "Info": info})
	return nil
}

func (c *Console) inviteSubmit(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.Invites == nil {
		c.notFound(w, r)
		return nil
	}
	code := r.PathValue("code")
	tok, exp, err := c.d.Invites.Accept(r.Context(), code, r.PostFormValue("name"), r.PostFormValue("password"), c.clientAddr(r), r.UserAgent())
	if err != nil {
		info, ierr := c.d.Invites.InviteInfo(r.Context(), code)
		if ierr != nil {
			c.notFound(w, r)
			return nil
		}
		return c.formError(w, r, nil, "invite", map[string]any{"Title": "Join " + info.OrgName, "Info": info}, err)
	}
	c.setSession(w, tok, exp)
	return redirect(w, r, "/console/inbox")
}

func (c *Console) forgotPage(w http.ResponseWriter, r *http.Request, _ *req) error {
	c.render(w, r, http.StatusOK, "forgot", nil, map[string]any{"Title": "Forgot password", "Configured": c.d.Recovery != nil})
	return nil
}

// forgotSubmit answers the same whether or not the email exists.
func (c *Console) forgotSubmit(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.Recovery == nil {
		c.notFound(w, r)
		return nil
	}
	if err := c.d.Recovery.ForgotPassword(r.Context(), r.PostFormValue("email")); err != nil {
		if p, ok := problem.As(err); !ok || p.Kind != problem.Invalid {
			return err
		}
	}
	c.render(w, r, http.StatusOK, "forgot", nil, map[string]any{"Title": "Forgot password", "Configured": true, "Sent": true})
	return nil
}

func (c *Console) resetPage(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.Recovery == nil {
		c.notFound(w, r)
		return nil
	}
	c.render(w, r, http.StatusOK, "reset", nil, map[string]any{"Title": "Choose a new password", "Code": r.PathValue("code")})
	return nil
}

func (c *Console) resetSubmit(w http.ResponseWriter, r *http.Request, _ *req) error {
	if c.d.Recovery == nil {
		c.notFound(w, r)
		return nil
	}
	code := r.PathValue("code")
	if err := c.d.Recovery.ResetWithCode(r.Context(), code, r.PostFormValue("password")); err != nil {
		return c.formError(w, r, nil, "reset", map[string]any{"Title": "Choose a new password", "Code": code}, err)
	}
	return redirect(w, r, "/console/login?next="+url.QueryEscape("/console/inbox"))
}

// eraseOrg deletes the organization. Afterwards nothing of it is left, the caller's session included:
// the cookie is cleared and the page says what happened.
func (c *Console) eraseOrg(w http.ResponseWriter, r *http.Request, q *req) error {
	if c.d.Eraser == nil {
		c.notFound(w, r)
		return nil
	}
	name := r.PostFormValue("name")
	if err := c.d.Eraser.Erase(r.Context(), q.P.OrgID, q.P.ID, name, strings.TrimSpace(r.PostFormValue("totp"))); err != nil {
		data, derr := c.settingsData(r, q)
		if derr != nil {
			return derr
		}
		return c.formError(w, r, q, "settings", data, err)
	}
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	c.render(w, r, http.StatusOK, "erased", nil, map[string]any{"Title": "Organization deleted", "Name": name})
	return nil
}
