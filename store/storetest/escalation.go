package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/store"
)

// consoleSend is a claimed console notification of one person.
func consoleSend(handoffID, key, userID string, at time.Time) store.Send {
	return store.Send{HandoffID: handoffID, Key: key, Attempt: 1, Channel: "console", Target: userID,
		State: store.SendSending, CreatedAt: at, UpdatedAt: at}
}

// isoTokenHash is the hash of the decision token the isolation test gives org A.
func isoTokenHash(a Fixture) []byte {
	h := sha256.Sum256([]byte("iso-token:" + a.Org.ID))
	return h[:]
}

func testUserContacts(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	verified := n.Add(-time.Hour)
	v := store.User{OrgID: f.Org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "Bo",
		PasswordHash: "$pbkdf2-sha256$y", Role: store.RoleMember, Timezone: "America/New_York", Active: true, CreatedAt: n,
		QuietHours: "22:00-07:00", Groups: []string{"ops", "sre"}}
	// Contacts come back ordered by kind, whatever order they were given in.
	v.Contacts = []store.Contact{
		{OrgID: f.Org.ID, UserID: v.ID, Kind: "telegram", Address: "987654", VerifiedAt: &verified, CreatedAt: n},
		{OrgID: f.Org.ID, UserID: v.ID, Kind: "phone", Address: "+15551234567", CreatedAt: n},
		{OrgID: f.Org.ID, UserID: v.ID, Kind: "slack", Address: "U123", VerifiedAt: &verified, CreatedAt: n},
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateUser(ctx, v) }))
	v.Contacts = []store.Contact{v.Contacts[1], v.Contacts[2], v.Contacts[0]}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.UserByID(ctx, v.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, v) {
			return fmt.Errorf("contacts round trip:\n got %+v\nwant %+v", got, v)
		}
		// No groups is stored as [] and reads back as nil, never as an empty slice; no contacts too.
		if got, err := tx.UserByID(ctx, f.User.ID); err != nil || got.Groups != nil || got.Contacts != nil {
			return fmt.Errorf("fixture user groups = %#v, contacts %#v, %v; want nil", got.Groups, got.Contacts, err)
		}
		us, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			if u.ID == v.ID && !reflect.DeepEqual(u, v) {
				return fmt.Errorf("ListUsers contacts:\n got %+v\nwant %+v", u, v)
			}
			if u.ID == f.User.ID && u.Contacts != nil {
				return fmt.Errorf("ListUsers gave the fixture user, who has none, contacts %+v", u.Contacts)
			}
		}
		return nil
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.UserByEmail(ctx, v.Email)
		if err != nil || !reflect.DeepEqual(got, v) {
			return fmt.Errorf("UserByEmail contacts: %+v, %v", got, err)
		}
		return nil
	}))

	// SetContact replaces the contact of its kind; DeleteContact removes it, and a missing one is fine.
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		phone := store.Contact{UserID: v.ID, Kind: "phone", Address: "+15557654321", VerifiedAt: &n, CreatedAt: n}
		if err := tx.SetContact(ctx, phone); err != nil {
			return err
		}
		if err := tx.DeleteContact(ctx, v.ID, "slack"); err != nil {
			return err
		}
		if err := tx.DeleteContact(ctx, v.ID, "slack"); err != nil {
			return fmt.Errorf("deleting a missing contact: %w", err)
		}
		if err := tx.SetContact(ctx, store.Contact{UserID: v.ID, Kind: "phone", CreatedAt: n}); err == nil {
			return errors.New("SetContact took an empty address")
		}
		return nil
	}))
	// A failed statement ends a PostgreSQL transaction, so this one has its own.
	err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return tx.SetContact(ctx, store.Contact{UserID: uuid.NewString(), Kind: "phone", Address: "+1555", CreatedAt: n})
	})
	if err == nil {
		t.Fatal("SetContact took a contact of a person who does not exist")
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.UserByID(ctx, v.ID)
		if err != nil {
			return err
		}
		phone := store.Contact{OrgID: f.Org.ID, UserID: v.ID, Kind: "phone", Address: "+15557654321", VerifiedAt: &n, CreatedAt: n}
		if want := []store.Contact{phone, v.Contacts[2]}; !reflect.DeepEqual(got.Contacts, want) {
			return fmt.Errorf("after set and delete:\n got %+v\nwant %+v", got.Contacts, want)
		}
		return nil
	}))

	w := v
	w.Name, w.Role, w.Timezone, w.Active = "Bo B", store.RoleViewer, "UTC", false
	w.QuietHours, w.Groups = "23:00-06:00", []string{}
	// What UpdateUser must leave alone, contacts included.
	w.Email, w.PasswordHash, w.CreatedAt, w.Contacts = "changed@example.com", "changed", n.Add(time.Hour), nil
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.UpdateUser(ctx, w) }))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.UserByID(ctx, v.ID)
		if err != nil {
			return err
		}
		want := w
		want.Email, want.PasswordHash, want.CreatedAt, want.Groups = v.Email, v.PasswordHash, v.CreatedAt, nil
		want.Contacts = got.Contacts
		if !reflect.DeepEqual(got, want) || len(got.Contacts) != 2 {
			return fmt.Errorf("UpdateUser:\n got %+v\nwant %+v", got, want)
		}
		w.Groups = []string{"night"}
		if err := tx.UpdateUser(ctx, w); err != nil {
			return err
		}
		if got, err := tx.UserByID(ctx, v.ID); err != nil || !reflect.DeepEqual(got.Groups, []string{"night"}) {
			return fmt.Errorf("UpdateUser groups = %#v, %v", got.Groups, err)
		}
		missing := w
		missing.ID = uuid.NewString()
		if err := tx.UpdateUser(ctx, missing); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("UpdateUser of a missing user: want ErrNotFound, got %v", err)
		}
		return nil
	}))
}

// testSendByRef: a status callback finds its send by the provider's reference alone, across orgs,
// and a reference that is empty or not unique finds nothing.
func testSendByRef(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	ref := "CA" + uuid.NewString()
	claim := func(f Fixture, key, provider, ref string) {
		must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			send := consoleSend(f.Handoff.ID, key, f.User.ID, now())
			send.Channel, send.Provider, send.Ref = "call", provider, ref
			_, _, err := tx.ClaimSend(ctx, send)
			return err
		}))
	}
	claim(a, "0.0.call.x.0", "twilio", ref)
	claim(b, "0.0.call.y.0", "twilio", "")
	claim(b, "0.0.call.y.1", "telnyx", ref) // the same id at another provider is another call
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.SendByRef(ctx, "twilio", ref)
		if err != nil || got.OrgID != a.Org.ID || got.HandoffID != a.Handoff.ID || got.Key != "0.0.call.x.0" {
			return fmt.Errorf("SendByRef = %+v, %v; want A's send", got, err)
		}
		if _, err := tx.SendByRef(ctx, "twilio", ""); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("SendByRef with an empty ref: %v, want ErrNotFound", err)
		}
		if _, err := tx.SendByRef(ctx, "plivo", ref); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("SendByRef at another provider: %v, want ErrNotFound", err)
		}
		return nil
	}))
	claim(b, "0.0.call.y.2", "twilio", ref)
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		if _, err := tx.SendByRef(ctx, "twilio", ref); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("SendByRef of a reference two sends share: %v, want ErrConflict", err)
		}
		return nil
	}))
}

func testHandoffLadder(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	h := NewHandoff(f.Org.ID, f.Device.ID)
	h.LadderName, h.LadderVersion, h.Ladder = "default", 3, []byte(`{"name":"default","steps":[{"after":"0s","notify":["user:x"]}]}`)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.InsertHandoff(ctx, h) }))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.HandoffByID(ctx, h.ID)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, AsRead(h)) {
			return fmt.Errorf("ladder round trip:\n got %+v\nwant %+v", got, AsRead(h))
		}
		all, err := tx.ListHandoffs(ctx, store.HandoffFilter{})
		if err != nil {
			return err
		}
		for _, g := range all {
			want := f.Handoff
			if g.ID == h.ID {
				want = h
			}
			if !reflect.DeepEqual(g, AsRead(want)) {
				return fmt.Errorf("ListHandoffs ladder:\n got %+v\nwant %+v", g, AsRead(want))
			}
		}
		// A handoff created without a ladder reads back with none: nil, not an empty slice.
		if got, err := tx.HandoffByID(ctx, f.Handoff.ID); err != nil || got.Ladder != nil || got.LadderName != "" || got.LadderVersion != 0 {
			return fmt.Errorf("no ladder: %q %d %#v, %v", got.LadderName, got.LadderVersion, got.Ladder, err)
		}
		return nil
	}))
}

func testLadders(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	lv := func(name string, v int) store.LadderVersion {
		return store.LadderVersion{OrgID: f.Org.ID, Name: name, Version: v, Source: []byte(fmt.Sprintf("name: %s\n# v%d\n", name, v)),
			CreatedBy: f.User.ID, CreatedAt: n.Add(time.Duration(v) * time.Second)}
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.LadderByName(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no ladder yet: want ErrNotFound, got %v", err)
		}
		// Org notes that there are none (a create reads the org, then the ladders), and the first put
		// in the same transaction is seen all the same.
		if _, err := tx.Org(ctx); err != nil {
			return err
		}
		if ls, err := tx.Ladders(ctx); err != nil || len(ls) != 0 {
			return fmt.Errorf("Ladders before any: %+v, %v", ls, err)
		}
		// Versions 9 and 10 check that "newest" is numeric, not lexical.
		for _, l := range []store.LadderVersion{lv("night", 1), lv("default", 1), lv("default", 9), lv("default", 10), lv("default", 2)} {
			if err := tx.PutLadder(ctx, l); err != nil {
				return err
			}
		}
		if ls, err := tx.Ladders(ctx); err != nil || len(ls) != 2 {
			return fmt.Errorf("Ladders after the puts, in their transaction: %+v, %v", ls, err)
		}
		return nil
	}))
	// The history, newest first, numerically (console).
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		vs, err := tx.LadderVersions(ctx, "default")
		if err != nil {
			return err
		}
		var got []int
		for _, v := range vs {
			got = append(got, v.Version)
		}
		if fmt.Sprint(got) != "[10 9 2 1]" || string(vs[0].Source) != "name: default\n# v10\n" {
			return fmt.Errorf("LadderVersions = %v", got)
		}
		if vs, err := tx.LadderVersions(ctx, "nope"); err != nil || len(vs) != 0 {
			return fmt.Errorf("LadderVersions of none: %v, %v", vs, err)
		}
		return nil
	}))
	dup := lv("default", 9)
	dup.Source = []byte("tampered")
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.PutLadder(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate ladder version: want ErrConflict, got %v", err)
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		if _, err := tx.Org(ctx); err != nil {
			return err
		}
		ls, err := tx.Ladders(ctx)
		if err != nil {
			return err
		}
		if want := []store.LadderVersion{lv("default", 10), lv("night", 1)}; !reflect.DeepEqual(ls, want) {
			return fmt.Errorf("Ladders:\n got %+v\nwant %+v", ls, want)
		}
		l, err := tx.LadderByName(ctx, "default")
		if err != nil || !reflect.DeepEqual(l, lv("default", 10)) {
			return fmt.Errorf("LadderByName(default) = %+v, %v", l, err)
		}
		l, err = tx.LadderByName(ctx, "night")
		if err != nil || !reflect.DeepEqual(l, lv("night", 1)) {
			return fmt.Errorf("LadderByName(night) = %+v, %v", l, err)
		}
		return nil
	}))
}

func testSends(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	s1 := store.Send{OrgID: f.Org.ID, HandoffID: f.Handoff.ID, Key: "0.1.slack." + f.User.ID + ".1", Climb: 0, Step: 1, Attempt: 1,
		Channel: "slack", Target: f.User.ID, State: store.SendSending, CreatedAt: n, UpdatedAt: n}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, ok, err := tx.ClaimSend(ctx, s1)
		if err != nil || !ok || !reflect.DeepEqual(got, s1) {
			return fmt.Errorf("first claim = %+v, %v, %v", got, ok, err)
		}
		return nil
	}))
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		again := s1
		again.Target, again.State, again.Provider, again.CreatedAt, again.UpdatedAt = "other", store.SendSent, "x", n.Add(time.Hour), n.Add(time.Hour)
		got, ok, err := tx.ClaimSend(ctx, again)
		if err != nil || ok || !reflect.DeepEqual(got, s1) {
			return fmt.Errorf("second claim = %+v, %v, %v; want the first row and false", got, ok, err)
		}
		return nil
	}))

	get := func(tx store.OrgTx, key string) (store.Send, error) {
		ss, err := tx.ListSends(ctx, f.Handoff.ID)
		for _, x := range ss {
			if x.Key == key {
				return x, err
			}
		}
		return store.Send{}, errors.Join(err, fmt.Errorf("send %s not listed", key))
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		ok, err := tx.SetSendState(ctx, f.Handoff.ID, s1.Key, []store.SendState{store.SendSending},
			store.SendUpdate{State: store.SendSent, Provider: "slack", Ref: "1700000000.000100", At: n.Add(time.Second)})
		if err != nil || !ok {
			return fmt.Errorf("sending→sent = %v, %v", ok, err)
		}
		ok, err = tx.SetSendState(ctx, f.Handoff.ID, s1.Key, []store.SendState{store.SendSending},
			store.SendUpdate{State: store.SendFailed, Detail: "provider_error", At: n.Add(2 * time.Second)})
		if err != nil || ok {
			return fmt.Errorf("from sending when sent = %v, %v; want false", ok, err)
		}
		// A delivery receipt knows neither provider nor ref: they must survive it.
		ok, err = tx.SetSendState(ctx, f.Handoff.ID, s1.Key, []store.SendState{store.SendSent, store.SendDelivered},
			store.SendUpdate{State: store.SendDelivered, At: n.Add(3 * time.Second)})
		if err != nil || !ok {
			return fmt.Errorf("sent→delivered = %v, %v", ok, err)
		}
		got, err := get(tx, s1.Key)
		want := s1
		want.State, want.Provider, want.Ref, want.UpdatedAt = store.SendDelivered, "slack", "1700000000.000100", n.Add(3*time.Second)
		if err != nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("after delivered:\n got %+v\nwant %+v (%v)", got, want, err)
		}
		// No from: any state moves.
		ok, err = tx.SetSendState(ctx, f.Handoff.ID, s1.Key, nil, store.SendUpdate{State: store.SendFailed, Detail: "provider_error", At: n.Add(4 * time.Second)})
		if err != nil || !ok {
			return fmt.Errorf("any→failed = %v, %v", ok, err)
		}
		if got, err := get(tx, s1.Key); err != nil || got.State != store.SendFailed || got.Detail != "provider_error" || got.Ref != want.Ref {
			return fmt.Errorf("after failed: %+v, %v", got, err)
		}
		if ok, err := tx.SetSendState(ctx, f.Handoff.ID, "no.such.key", nil, store.SendUpdate{State: store.SendSent, At: n}); err != nil || ok {
			return fmt.Errorf("missing send = %v, %v; want false", ok, err)
		}
		if _, err := tx.SetSendState(ctx, f.Handoff.ID, s1.Key, nil, store.SendUpdate{State: "bogus", At: n}); err == nil {
			return errors.New("SetSendState accepted an unknown state")
		}
		if _, err := tx.SetSendState(ctx, f.Handoff.ID, s1.Key, []store.SendState{"sent'); --"}, store.SendUpdate{State: store.SendSent, At: n}); err == nil {
			return errors.New("SetSendState accepted an unknown from state")
		}
		if _, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: f.Handoff.ID, Key: "k", State: "bogus", CreatedAt: n}); err == nil {
			return errors.New("ClaimSend accepted an unknown state")
		}
		return nil
	}))

	// Created order, then key; an unset state is a claim in progress and an unset UpdatedAt is CreatedAt.
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, x := range []store.Send{
			{HandoffID: f.Handoff.ID, Key: "b", Channel: "console", Target: f.User.ID, CreatedAt: n.Add(-time.Second)},
			{HandoffID: f.Handoff.ID, Key: "z", Channel: "console", Target: f.User.ID, CreatedAt: n.Add(-2 * time.Second)},
			{HandoffID: f.Handoff.ID, Key: "a", Channel: "console", Target: f.User.ID, CreatedAt: n.Add(-time.Second)},
		} {
			got, ok, err := tx.ClaimSend(ctx, x)
			if err != nil || !ok || got.State != store.SendSending || !got.UpdatedAt.Equal(x.CreatedAt) || got.OrgID != f.Org.ID {
				return fmt.Errorf("claim %s = %+v, %v, %v", x.Key, got, ok, err)
			}
		}
		ss, err := tx.ListSends(ctx, f.Handoff.ID)
		if err != nil {
			return err
		}
		var keys []string
		for _, x := range ss {
			keys = append(keys, x.Key)
		}
		if want := []string{"z", "a", "b", s1.Key}; !reflect.DeepEqual(keys, want) {
			return fmt.Errorf("ListSends order %v, want %v", keys, want)
		}
		if ss, err := tx.ListSends(ctx, uuid.NewString()); err != nil || len(ss) != 0 {
			return fmt.Errorf("ListSends of an unknown handoff: %+v, %v", ss, err)
		}
		return nil
	}))
	err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		_, _, err := tx.ClaimSend(ctx, consoleSend(uuid.NewString(), "k", f.User.ID, n))
		return err
	})
	if err == nil {
		t.Fatal("a send for a missing handoff was claimed")
	}
}

// testConcurrentClaims: several jobs claim the same send at once, each in its own transaction; one
// wins and every loser sees the winner's row.
// testClaimSends: one statement claims several sends of a handoff, inserting only those whose key is
// new, and says which.
func testClaimSends(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	send := func(key string, st store.SendState) store.Send {
		return store.Send{OrgID: f.Org.ID, HandoffID: f.Handoff.ID, Key: key, Climb: 0, Step: 2, Channel: "webhook",
			Target: "webhook:ops", State: st, Detail: "d", CreatedAt: n, UpdatedAt: n}
	}
	had := send("had", store.SendSent)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		_, _, err := tx.ClaimSend(ctx, had)
		return err
	}))
	batch := []store.Send{send("step.0.2", store.SendStepDone), send("had", store.SendSending), send("new", ""), send("quiet", store.SendQuiet)}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		got, err := tx.ClaimSends(ctx, batch)
		if want := []bool{true, false, true, true}; err != nil || !reflect.DeepEqual(got, want) {
			return fmt.Errorf("ClaimSends = %v, %v; want %v", got, err, want)
		}
		if got, err := tx.ClaimSends(ctx, batch[:1]); err != nil || !reflect.DeepEqual(got, []bool{false}) {
			return fmt.Errorf("ClaimSends again = %v, %v; want [false]", got, err)
		}
		if _, err := tx.ClaimSends(ctx, []store.Send{send("x", "bogus")}); err == nil {
			return errors.New("ClaimSends accepted an unknown state")
		}
		ss, err := tx.ListSends(ctx, f.Handoff.ID)
		if err != nil {
			return err
		}
		byKey := map[string]store.Send{}
		for _, x := range ss {
			byKey[x.Key] = x
		}
		want := map[string]store.Send{"had": had, "step.0.2": batch[0], "new": send("new", store.SendSending), "quiet": batch[3]}
		if !reflect.DeepEqual(byKey, want) {
			return fmt.Errorf("sends = %+v; want %+v", byKey, want)
		}
		return nil
	}))
}

// testHandoffWithAgent: the handoff as HandoffByID reads it, and its device's name (a handoff always
// has a device: the foreign key).
func testHandoffWithAgent(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	other := NewFixture(t, s, "other")
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, c := range []struct {
			id, agent string
		}{{f.Handoff.ID, f.Device.Name}} {
			want, err := tx.HandoffByID(ctx, c.id)
			if err != nil {
				return err
			}
			got, agent, err := tx.HandoffWithAgent(ctx, c.id)
			if err != nil || !reflect.DeepEqual(got, want) || agent != c.agent {
				return fmt.Errorf("HandoffWithAgent(%s) = %+v, %q, %v; want %+v, %q", c.id, got, agent, err, want, c.agent)
			}
		}
		if _, _, err := tx.HandoffWithAgent(ctx, other.Handoff.ID); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("another org's handoff: %v; want ErrNotFound", err)
		}
		return nil
	}))
}

func testConcurrentClaims(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	const n = 8
	type result struct {
		send store.Send
		ok   bool
		err  error
	}
	results := make(chan result, n)
	at := now()
	for i := 0; i < n; i++ {
		go func(i int) {
			var r result
			r.err = s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
				x := consoleSend(f.Handoff.ID, "0.0.console.u.1", f.User.ID, at)
				x.Provider = fmt.Sprint("p", i)
				var err error
				r.send, r.ok, err = tx.ClaimSend(ctx, x)
				return err
			})
			results <- r
		}(i)
	}
	var won []store.Send
	var all []store.Send
	for i := 0; i < n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.ok {
			won = append(won, r.send)
		}
		all = append(all, r.send)
	}
	if len(won) != 1 {
		t.Fatalf("%d concurrent claims won, want exactly 1", len(won))
	}
	for _, x := range all {
		if !reflect.DeepEqual(x, won[0]) {
			t.Fatalf("a loser saw %+v, the winner claimed %+v", x, won[0])
		}
	}
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		ss, err := tx.ListSends(ctx, f.Handoff.ID)
		if err != nil || len(ss) != 1 || !reflect.DeepEqual(ss[0], won[0]) {
			return fmt.Errorf("after concurrent claims: %+v, %v", ss, err)
		}
		return nil
	}))
}

func testInbox(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	u1 := a.User.ID
	u2 := store.User{OrgID: a.Org.ID, ID: uuid.NewString(), Email: uuid.NewString() + "@example.com", Name: "u2",
		PasswordHash: "x", Role: store.RoleMember, Timezone: "UTC", Active: true, CreatedAt: now()}
	base := now().Add(-time.Hour)
	mk := func(i int) store.Handoff {
		h := NewHandoff(a.Org.ID, a.Device.ID)
		h.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		return h
	}
	h1, h2, hSlack, hDecided, hU2, hStep := mk(1), mk(2), mk(3), mk(4), mk(5), mk(6)
	send := func(h store.Handoff, key, channel, target string, state store.SendState) store.Send {
		return store.Send{HandoffID: h.ID, Key: key, Attempt: 1, Channel: channel, Target: target, State: state, CreatedAt: h.CreatedAt}
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if err := tx.CreateUser(ctx, u2); err != nil {
			return err
		}
		for _, h := range []store.Handoff{h1, h2, hSlack, hDecided, hU2, hStep} {
			if err := tx.InsertHandoff(ctx, h); err != nil {
				return err
			}
		}
		for _, x := range []store.Send{
			send(h1, "1", "console", u1, store.SendSent),
			// Notified twice (a retry and the next climb): listed once.
			send(h2, "1", "console", u1, store.SendSent),
			send(h2, "2", "console", u1, store.SendFailed),
			send(hSlack, "1", "slack", u1, store.SendDelivered),
			send(hDecided, "1", "console", u1, store.SendSent),
			send(hU2, "1", "console", u2.ID, store.SendSent),
			send(hStep, "1", "console", u1, store.SendStepDone),
		} {
			if _, _, err := tx.ClaimSend(ctx, x); err != nil {
				return err
			}
		}
		_, err := tx.FinishHandoff(ctx, hDecided.ID, store.StatusApproved, store.Decision{OptionID: "approve", ByKind: store.ActorUser, ByID: u1, Channel: "console", DecidedAt: now()})
		return err
	}))
	// Org B notified a console target with the same id: it is B's, and A's inbox must not show it.
	hb := NewHandoff(b.Org.ID, b.Device.ID)
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		if err := tx.InsertHandoff(ctx, hb); err != nil {
			return err
		}
		_, _, err := tx.ClaimSend(ctx, store.Send{HandoffID: hb.ID, Key: "1", Channel: "console", Target: u1, State: store.SendSent, CreatedAt: now()})
		return err
	}))
	ids := func(hs []store.Handoff) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.ID)
		}
		return out
	}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		for _, c := range []struct {
			user  string
			limit int
			want  []string
		}{
			{u1, 0, []string{h2.ID, h1.ID}},
			{u1, 1000, []string{h2.ID, h1.ID}},
			{u1, 1, []string{h2.ID}},
			{u2.ID, 0, []string{hU2.ID}},
			{uuid.NewString(), 0, nil},
		} {
			hs, err := tx.Inbox(ctx, c.user, c.limit)
			if err != nil {
				return err
			}
			if got := ids(hs); !reflect.DeepEqual(got, c.want) {
				return fmt.Errorf("Inbox(%s, %d) = %v, want %v", c.user, c.limit, got, c.want)
			}
		}
		hs, err := tx.Inbox(ctx, u1, 0)
		if err != nil || len(hs) != 2 || !reflect.DeepEqual(hs[1], AsRead(h1)) {
			return fmt.Errorf("Inbox handoff round trip:\n got %+v\nwant %+v (%v)", hs, AsRead(h1), err)
		}
		return nil
	}))
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		hs, err := tx.Inbox(ctx, u1, 0)
		if got := ids(hs); err != nil || !reflect.DeepEqual(got, []string{hb.ID}) {
			return fmt.Errorf("B's Inbox(%s) = %v, %v; want only B's handoff", u1, got, err)
		}
		return nil
	}))
}

func testDecisionTokens(t *testing.T, s store.Store) {
	f := NewFixture(t, s, "acme")
	n := now()
	tok := store.DecisionToken{OrgID: f.Org.ID, Hash: randBytes(32), HandoffID: f.Handoff.ID, UserID: f.User.ID, Channel: "slack",
		CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	expired := tok
	expired.Hash, expired.CreatedAt, expired.ExpiresAt = randBytes(32), n.Add(-time.Hour), n.Add(-time.Minute)
	edge := tok
	edge.Hash, edge.ExpiresAt = randBytes(32), n.Add(10*time.Minute+123*time.Microsecond)
	edge2 := edge
	edge2.Hash = randBytes(32)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateDecisionToken(ctx, tok), tx.CreateDecisionToken(ctx, expired),
			tx.CreateDecisionToken(ctx, edge), tx.CreateDecisionToken(ctx, edge2))
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.DecisionTokenByHash(ctx, tok.Hash)
		if err != nil || !reflect.DeepEqual(got, tok) {
			return fmt.Errorf("token round trip:\n got %+v\nwant %+v (%v)", got, tok, err)
		}
		if _, err := tx.DecisionTokenByHash(ctx, randBytes(32)); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("unknown token: want ErrNotFound, got %v", err)
		}
		return nil
	}))
	used := n.Add(time.Second)
	must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
		for _, c := range []struct {
			name string
			hash []byte
			at   time.Time
			want bool
		}{
			{"first use", tok.Hash, used, true},
			{"second use", tok.Hash, used.Add(time.Second), false},
			{"expired", expired.Hash, n, false},
			{"unknown", randBytes(32), n, false},
			{"at expiry", edge.Hash, edge.ExpiresAt, false},
			{"a microsecond before expiry", edge2.Hash, edge2.ExpiresAt.Add(-time.Microsecond), true},
		} {
			ok, err := tx.UseDecisionToken(ctx, c.hash, c.at)
			if err != nil || ok != c.want {
				return fmt.Errorf("UseDecisionToken %s = %v, %v; want %v", c.name, ok, err, c.want)
			}
		}
		return nil
	}))
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.DecisionTokenByHash(ctx, tok.Hash)
		if err != nil || got.UsedAt == nil || !got.UsedAt.Equal(used) {
			return fmt.Errorf("UsedAt = %v, %v; want %v", got.UsedAt, err, used)
		}
		if got, err := tx.DecisionTokenByHash(ctx, expired.Hash); err != nil || got.UsedAt != nil {
			return fmt.Errorf("expired token was marked used: %v, %v", got.UsedAt, err)
		}
		return nil
	}))
	// A token for a handoff or person that does not exist is refused.
	for _, bad := range []store.DecisionToken{
		{Hash: randBytes(32), HandoffID: uuid.NewString(), UserID: f.User.ID, Channel: "sms", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
		{Hash: randBytes(32), HandoffID: f.Handoff.ID, UserID: uuid.NewString(), Channel: "sms", CreatedAt: n, ExpiresAt: n.Add(time.Hour)},
	} {
		if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateDecisionToken(ctx, bad) }); err == nil {
			t.Errorf("token for handoff %s user %s was stored", bad.HandoffID, bad.UserID)
		}
	}
	if err := s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error { return tx.CreateDecisionToken(ctx, tok) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("duplicate token hash: want ErrConflict, got %v", err)
	}
}

// testEraseOrg: erasing an organization takes its ladders, sends and decision tokens with it, and
// nothing of another's.
func testEraseOrg(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	tokens := map[string][]byte{}
	for _, f := range []Fixture{a, b} {
		tokens[f.Org.ID] = randBytes(32)
		must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			_, _, err := tx.ClaimSend(ctx, consoleSend(f.Handoff.ID, "k", f.User.ID, now()))
			return errors.Join(err,
				tx.PutLadder(ctx, store.LadderVersion{Name: "default", Version: 1, Source: []byte("x"), CreatedBy: f.User.ID, CreatedAt: now()}),
				tx.CreateDecisionToken(ctx, store.DecisionToken{Hash: tokens[f.Org.ID], HandoffID: f.Handoff.ID, UserID: f.User.ID,
					Channel: "sms", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}))
		}))
	}
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error { return tx.EraseOrg(ctx, a.Org.ID) }))
	count := func(f Fixture) (n int) {
		must(t, s.InOrg(ctx, f.Org.ID, func(tx store.OrgTx) error {
			ls, err1 := tx.Ladders(ctx)
			ss, err2 := tx.ListSends(ctx, f.Handoff.ID)
			hs, err3 := tx.Inbox(ctx, f.User.ID, 0)
			n = len(ls) + len(ss) + len(hs)
			return errors.Join(err1, err2, err3)
		}))
		must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
			_, err := tx.DecisionTokenByHash(ctx, tokens[f.Org.ID])
			if err == nil {
				n++
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return nil
		}))
		return n
	}
	if n := count(a); n != 0 {
		t.Errorf("%d escalation rows of the erased org remain", n)
	}
	if n := count(b); n != 4 {
		t.Errorf("the other org has %d escalation rows after erasure, want 4", n)
	}
}

// testOpenDecisionTokensTo: an SMS reply finds its token by the sender's number across orgs, and
// only among unused, unexpired tokens sent on that channel to a person with that contact.
func testOpenDecisionTokensTo(t *testing.T, s store.Store) {
	a := NewFixture(t, s, "a")
	b := NewFixture(t, s, "b")
	n := now()
	const phone, kind = "+15550100001", "phone"
	var other store.User
	mk := func(f Fixture, user, channel string, expires time.Time) store.DecisionToken {
		return store.DecisionToken{OrgID: f.Org.ID, Hash: randBytes(32), HandoffID: f.Handoff.ID, UserID: user, Channel: channel,
			CreatedAt: n, ExpiresAt: expires}
	}
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		other = b.User
		other.ID, other.Email, other.Name = uuid.NewString(), uuid.NewString()+"@example.com", "b other"
		return errors.Join(tx.CreateUser(ctx, other),
			tx.SetContact(ctx, store.Contact{UserID: b.User.ID, Kind: kind, Address: phone, CreatedAt: n}),
			tx.SetContact(ctx, store.Contact{UserID: other.ID, Kind: kind, Address: "+15550100002", CreatedAt: n}))
	}))
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		return tx.SetContact(ctx, store.Contact{UserID: a.User.ID, Kind: kind, Address: phone, CreatedAt: n})
	}))
	openA := mk(a, a.User.ID, "sms", n.Add(time.Hour))
	openA.CreatedAt = n.Add(-time.Minute) // listed first
	openB := mk(b, b.User.ID, "sms", n.Add(time.Hour))
	used := mk(a, a.User.ID, "sms", n.Add(time.Hour))
	expired := mk(a, a.User.ID, "sms", n)
	call := mk(a, a.User.ID, "call", n.Add(time.Hour))
	otherPerson := mk(b, other.ID, "sms", n.Add(time.Hour))
	team := store.DecisionToken{OrgID: a.Org.ID, Hash: randBytes(32), HandoffID: a.Handoff.ID, Target: "slack:#ops", Channel: "sms",
		CreatedAt: n, ExpiresAt: n.Add(time.Hour)}
	must(t, s.InOrg(ctx, a.Org.ID, func(tx store.OrgTx) error {
		if err := errors.Join(tx.CreateDecisionToken(ctx, openA), tx.CreateDecisionToken(ctx, used), tx.CreateDecisionToken(ctx, expired),
			tx.CreateDecisionToken(ctx, call), tx.CreateDecisionToken(ctx, team)); err != nil {
			return err
		}
		ok, err := tx.UseDecisionToken(ctx, used.Hash, n)
		return errors.Join(err, expect(ok, "token not used"))
	}))
	must(t, s.InOrg(ctx, b.Org.ID, func(tx store.OrgTx) error {
		return errors.Join(tx.CreateDecisionToken(ctx, openB), tx.CreateDecisionToken(ctx, otherPerson))
	}))
	hashes := func(ts []store.DecisionToken) []string {
		out := []string{}
		for _, d := range ts {
			out = append(out, fmt.Sprintf("%x", d.Hash[:4]))
		}
		return out
	}
	for _, c := range []struct {
		name                   string
		kind, address, channel string
		want                   []store.DecisionToken
	}{
		{"both orgs, oldest first", kind, phone, "sms", []store.DecisionToken{openA, openB}},
		{"on calls", kind, phone, "call", []store.DecisionToken{call}},
		{"another number", kind, "+15550100002", "sms", []store.DecisionToken{otherPerson}},
		{"an unknown number", kind, "+15550100009", "sms", nil},
		{"another contact kind", "slack", phone, "sms", nil},
	} {
		must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
			got, err := tx.OpenDecisionTokensTo(ctx, c.kind, c.address, c.channel, n)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if !reflect.DeepEqual(hashes(got), hashes(c.want)) {
				return fmt.Errorf("%s: OpenDecisionTokensTo = %v, want %v", c.name, hashes(got), hashes(c.want))
			}
			if len(got) > 0 && !reflect.DeepEqual(got[0], c.want[0]) {
				return fmt.Errorf("%s: token round trip:\n got %+v\nwant %+v", c.name, got[0], c.want[0])
			}
			return nil
		}))
	}
	// At the expiry instant a token is no longer open (as UseDecisionToken refuses it then).
	must(t, s.InSystem(ctx, func(tx store.SystemTx) error {
		got, err := tx.OpenDecisionTokensTo(ctx, kind, phone, "sms", n.Add(time.Hour))
		return errors.Join(err, expect(len(got) == 0, "tokens open at their expiry"))
	}))
}
