package escalation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/quiet"
	"github.com/ony-ai/ony/store"
)

// RunUpdate rewrites every delivered message of a final handoff with its outcome.
func (e *Engine) RunUpdate(ctx context.Context, a UpdateArgs) error {
	var (
		h     store.Handoff
		sends []store.Send
		users = map[string]store.User{}
	)
	err := e.d.Store.InOrg(ctx, a.OrgID, func(tx store.OrgTx) error {
		var err error
		if h, err = tx.HandoffByID(ctx, a.HandoffID); err != nil {
			return err
		}
		if sends, err = tx.ListSends(ctx, a.HandoffID); err != nil {
			return err
		}
		us, err := tx.ListUsers(ctx)
		for _, u := range us {
			users[u.ID] = u
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil || !h.Status.Final() {
		return err
	}
	var errs []error
	for _, s := range sends {
		switch s.State {
		case store.SendSent, store.SendDelivered, store.SendAnswered, store.SendNoAnswer, store.SendBusy:
		default:
			continue
		}
		ch := e.d.Channels.Provider(s.Channel, s.Provider)
		if ch == nil {
			continue
		}
		r := channel.Recipient{Name: s.Target, Timezone: time.UTC}
		if u, ok := users[s.Target]; ok {
			kind, _ := e.kind(s.Channel)
			r = channel.Recipient{UserID: u.ID, Name: u.Name, Address: kind.Address(u), Timezone: quiet.Location(u.Timezone)}
		} else if _, v, ok := strings.Cut(s.Target, ":"); ok {
			r.Address = v
		}
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		err := ch.Update(sctx, channel.Update{Key: h.ID + "/" + s.Key, OrgID: h.OrgID, HandoffID: h.ID, Ref: s.Ref, Recipient: r,
			Status: h.Status, Text: OutcomeText(h, r.Timezone)})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("update %s via %s: %w", s.Channel, s.Provider, err))
		}
	}
	return errors.Join(errs...)
}

// OutcomeText is the line a message shows once the handoff is final, e.g.
// "Approved by Ana via call, 14:03 CET".
func OutcomeText(h store.Handoff, loc *time.Location) string {
	d := h.Decision
	if d == nil {
		return "No longer pending"
	}
	at := d.DecidedAt.In(loc).Format("15:04 MST")
	switch h.Status {
	case store.StatusExpired:
		return "Expired without a decision, " + at
	case store.StatusCancelled:
		return "Cancelled, " + at
	}
	word := "Denied"
	if h.Status == store.StatusApproved {
		word = "Approved"
	}
	by := d.ByName
	if by == "" {
		by = "someone"
	}
	return fmt.Sprintf("%s by %s via %s, %s", word, by, d.Channel, at)
}
