package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/escalation"
	"github.com/ony-ai/ony/internal/yamlnode"
	"github.com/ony-ai/ony/problem"
	"github.com/ony-ai/ony/store"
)

func (c *Console) devicesData(r *http.Request, q *req) (map[string]any, error) {
	devs, err := c.d.Org.Devices(r.Context(), q.P.OrgID)
	if err != nil {
		return nil, err
	}
	slices.Reverse(devs)
	return map[string]any{"Title": "Devices", "Devices": devs}, nil
}

func (c *Console) devices(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.devicesData(r, q)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "devices", q, data)
	return nil
}

// createDevice shows the new token on this response only; it is stored hashed and never shown again.
func (c *Console) createDevice(w http.ResponseWriter, r *http.Request, q *req) error {
	d, err := c.d.Org.CreateDevice(r.Context(), q.auditActor(), q.P.OrgID, r.PostFormValue("name"))
	if err != nil {
		msg, ok := problemMessage(err)
		if !ok {
			return err
		}
		data, derr := c.devicesData(r, q)
		if derr != nil {
			return derr
		}
		data["Error"] = msg
		c.render(w, r, statusFor(err), "devices", q, data)
		return nil
	}
	c.render(w, r, http.StatusOK, "device_created", q, map[string]any{"Title": "Device created", "Name": strings.TrimSpace(r.PostFormValue("name")), "Token": d.Token})
	return nil
}

func (c *Console) revokeDevice(w http.ResponseWriter, r *http.Request, q *req) error {
	if err := c.d.Org.RevokeDevice(r.Context(), q.auditActor(), q.P.OrgID, r.PathValue("id")); err != nil {
		return err
	}
	return redirect(w, r, "/console/devices")
}

func (c *Console) ladders(w http.ResponseWriter, r *http.Request, q *req) error {
	ls, err := c.d.Escalation.OrgLadders(r.Context(), q.P.OrgID)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "ladders", q, map[string]any{"Title": "Ladders", "Ladders": ls})
	return nil
}

// previewTimeout is the sample handoff's timeout in a ladder's preview.
const previewTimeout = time.Hour

func (c *Console) preview(l *escalation.Ladder) string {
	var b bytes.Buffer
	escalation.FormatTimeline(&b, l, escalation.Timeline(l, previewTimeout, c.d.Escalation.Kinds()))
	return b.String()
}

var ladderNameOK = func(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (c *Console) ladderPage(w http.ResponseWriter, r *http.Request, q *req) error {
	name := r.PathValue("name")
	ls, err := c.d.Escalation.OrgLadders(r.Context(), q.P.OrgID)
	if err != nil {
		return err
	}
	data := map[string]any{"Title": "Ladder " + name, "Name": name}
	for _, li := range ls {
		if li.Ladder.Name == name {
			data["Ladder"], data["Source"], data["Preview"] = li.Ladder, string(li.Source), c.preview(li.Ladder)
		}
	}
	versions, err := c.d.Escalation.LadderVersions(r.Context(), q.P.OrgID, name)
	if err != nil {
		return err
	}
	data["Versions"] = versions
	if v := r.URL.Query().Get("version"); v != "" {
		// An older version, loaded into the editor: saving it makes it the newest again.
		for _, lv := range versions {
			if strconv.Itoa(lv.Version) == v {
				data["Source"], data["Shown"] = string(lv.Source), lv.Version
			}
		}
		if data["Shown"] == nil {
			c.notFound(w, r)
			return nil
		}
	}
	if data["Ladder"] == nil && (q.P.Role != store.RoleAdmin || !ladderNameOK(name)) {
		c.notFound(w, r)
		return nil
	}
	if data["Ladder"] == nil {
		data["Source"] = "name: " + name + "\nsteps:\n  - channels: [console]\n    targets: [role:admin]\n    wait: 5m\n"
	}
	c.render(w, r, http.StatusOK, "ladder", q, data)
	return nil
}

// diagLine is a parse mistake shown beside the editor.
type diagLine struct {
	Line, Column int
	Path, Msg    string
}

// ladderSubmit saves the YAML (button "save") or only previews it ("preview"). Mistakes are listed
// with their line numbers next to the editor, which keeps what was typed.
func (c *Console) ladderSubmit(w http.ResponseWriter, r *http.Request, q *req) error {
	name := r.PathValue("name")
	src := strings.ReplaceAll(r.PostFormValue("yaml"), "\r\n", "\n")
	data := map[string]any{"Title": "Ladder " + name, "Name": name, "Source": src}
	show := func(status int, err error) error {
		var diags []diagLine
		var list []yamlnode.Diagnostic
		var perr *escalation.Errors
		if p, ok := problem.As(err); ok {
			if d, ok := p.Details.(map[string]any); ok {
				list, _ = d["errors"].([]yamlnode.Diagnostic)
			}
			if list == nil {
				data["Error"] = p.Message
			}
		} else if errors.As(err, &perr) {
			list = perr.List
		} else {
			return err
		}
		for _, d := range list {
			diags = append(diags, diagLine{d.Line, d.Column, d.Path, d.Msg})
		}
		data["Diags"] = diags
		c.render(w, r, status, "ladder", q, data)
		return nil
	}
	if r.PostFormValue("action") == "preview" {
		ls, err := escalation.Parse([]byte(src), name+".yaml", c.d.Escalation.Kinds())
		if err != nil {
			return show(http.StatusBadRequest, err)
		}
		if len(ls) != 1 {
			data["Error"] = fmt.Sprintf("write exactly one ladder, got %d", len(ls))
			c.render(w, r, http.StatusBadRequest, "ladder", q, data)
			return nil
		}
		data["Preview"], data["Previewing"] = c.preview(ls[0]), true
		c.render(w, r, http.StatusOK, "ladder", q, data)
		return nil
	}
	_, err := c.d.Escalation.PutLadder(r.Context(), escalation.Admin{OrgID: q.P.OrgID, UserID: q.P.ID, Role: q.P.Role}, name, []byte(src))
	if err != nil {
		if _, ok := problem.As(err); ok {
			return show(statusFor(err), err)
		}
		return err
	}
	return redirect(w, r, "/console/ladders/"+url.PathEscape(name))
}

// auditPageSize is how many leaves one audit page reads.
const auditPageSize = 100

type auditRow struct {
	Index int64
	E     audit.Event
}

func (c *Console) auditData(r *http.Request, q *req) (map[string]any, error) {
	ctx := r.Context()
	note, err := c.d.Audit.Checkpoint(ctx, c.d.Store, q.P.OrgID)
	if err != nil {
		return nil, err
	}
	cp, err := audit.ParseCheckpoint(string(note))
	if err != nil {
		return nil, fmt.Errorf("console: checkpoint: %w", err)
	}
	size := cp.Size
	before := size
	if s := r.URL.Query().Get("before"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < size {
			before = n
		}
	}
	from := max(before-auditPageSize, 0)
	leaves, err := c.d.Audit.Leaves(ctx, c.d.Store, q.P.OrgID, from, int(before-from))
	if err != nil {
		return nil, err
	}
	typ, actor := r.URL.Query().Get("type"), strings.TrimSpace(r.URL.Query().Get("actor"))
	var rows []auditRow
	for i := len(leaves) - 1; i >= 0; i-- {
		e, err := audit.Decode(leaves[i].Data)
		if err != nil {
			continue
		}
		if (typ != "" && string(e.Type) != typ) || (actor != "" && e.Actor.ID != actor && e.Actor.Kind != actor) {
			continue
		}
		rows = append(rows, auditRow{leaves[i].Index, e})
	}
	data := map[string]any{"Title": "Audit log", "Rows": rows, "Checkpoint": string(note), "Size": size,
		"Type": typ, "Actor": actor, "Types": eventTypes, "From": from}
	if from > 0 {
		v := url.Values{"before": {strconv.FormatInt(from, 10)}}
		if typ != "" {
			v.Set("type", typ)
		}
		if actor != "" {
			v.Set("actor", actor)
		}
		data["Older"] = "/console/audit?" + v.Encode()
	}
	return data, nil
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, q *req) error {
	data, err := c.auditData(r, q)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "audit", q, data)
	return nil
}

func (c *Console) auditVerify(w http.ResponseWriter, r *http.Request, q *req) error {
	rep, err := c.d.Audit.Verify(r.Context(), c.d.Store, q.P.OrgID)
	if err != nil {
		return err
	}
	data, err := c.auditData(r, q)
	if err != nil {
		return err
	}
	data["Report"] = rep
	c.render(w, r, http.StatusOK, "audit", q, data)
	return nil
}

// auditExport downloads the same export `ony audit export` writes.
func (c *Console) auditExport(w http.ResponseWriter, r *http.Request, q *req) error {
	var b bytes.Buffer
	if err := c.d.Audit.Export(r.Context(), c.d.Store, q.P.OrgID, &b); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="ony-audit-`+c.now().UTC().Format("20060102-150405")+`.json"`)
	_, _ = w.Write(b.Bytes())
	return nil
}

// eventTypes are the filter's choices (the organization's log; org.erased lives in the instance log).
var eventTypes = []audit.EventType{audit.HandoffCreated, audit.HandoffDecided, audit.HandoffExpired, audit.HandoffCancelled,
	audit.MemberInvited, audit.MemberRole, audit.MemberOff, audit.MemberPasswordReset, audit.MemberPasswordChanged,
	audit.DeviceCreated, audit.DeviceRevoked, audit.LadderChanged, audit.PayloadScrubbed, audit.StepUpFailed, audit.OrgCreated}
