package audit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ony-ai/ony/audit"
	"github.com/ony-ai/ony/internal/testdb"
	"github.com/ony-ai/ony/store"
	"github.com/ony-ai/ony/store/storetest"
)

// TestExport exports a real org's log and verifies it offline: alone, against a checkpoint the verifier
// kept when the log was smaller, against a checkpoint of a forked log with the same origin, with an
// anonymised member directory, and with the wrong key.
func TestExport(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		f := storetest.NewFixture(t, s, "acme")
		org := f.Org.ID
		appendN(t, s, l, org, 0, 10)
		older, _ := checkpoint(t, s, l, org)
		appendN(t, s, l, org, 10, 15)
		data := exportBytes(t, l, s, org)

		rep, err := audit.VerifyExport(data, l.Keys(), nil)
		if err != nil || !rep.OK() || rep.Size != 25 || rep.CheckpointSize != 25 || rep.Origin != l.Origin(org) || rep.Consistency != "" {
			t.Fatalf("VerifyExport: %+v, %v", rep, err)
		}
		if live := verifyOK(t, s, l, org, 25); live.Root != rep.Root {
			t.Fatalf("export root %s, live root %s", rep.Root, live.Root)
		}
		var ex audit.Export
		if err := json.Unmarshal(data, &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Format != audit.ExportFormat || ex.Origin != l.Origin(org) || len(ex.Leaves) != 25 ||
			strings.Join(ex.Keys, ",") != strings.Join(l.Keys(), ",") {
			t.Fatalf("export header: %+v", ex)
		}
		for i, lf := range leaves(t, s, org) {
			if !bytes.Equal(ex.Leaves[i], lf.Data) {
				t.Fatalf("leaf %d differs from the stored bytes", i)
			}
		}

		t.Run("older checkpoint", func(t *testing.T) {
			t.Parallel()
			rep, err := audit.VerifyExport(data, l.Keys(), older)
			if err != nil || !rep.OK() || rep.Size != 25 || rep.OlderSize != 10 || rep.Consistency != audit.ConsistencyOK {
				t.Fatalf("with the size-10 checkpoint: %+v, %v", rep, err)
			}
			// The current checkpoint is its own prefix.
			if rep, err := audit.VerifyExport(data, l.Keys(), []byte(ex.Checkpoint)); err != nil || !rep.OK() {
				t.Fatalf("with the same checkpoint: %+v, %v", rep, err)
			}
		})

		t.Run("forked log", func(t *testing.T) {
			t.Parallel()
			// Another database holds a log of the same origin, signed with the same key, that shares the
			// first 4 leaves byte for byte (re-appending a decoded leaf reproduces its bytes) and then
			// diverges: its checkpoint at 4 is a prefix of this log, its checkpoint at 10 is not.
			fork := testdb.Open(t, "sqlite")
			stored := leaves(t, s, org)
			for i := 0; i < 4; i++ {
				e := mustDecode(t, stored[i].Data)
				if err := fork.InOrg(ctx, org, func(tx store.OrgTx) error { err := l.Append(ctx, tx, e); return err }); err != nil {
					t.Fatal(err)
				}
			}
			forkAt4, _ := checkpoint(t, fork, l, org)
			if rep, err := audit.VerifyExport(data, l.Keys(), forkAt4); err != nil || !rep.OK() || rep.OlderSize != 4 || rep.Consistency != audit.ConsistencyOK {
				t.Fatalf("the shared prefix's checkpoint was refused: %+v, %v", rep, err)
			}
			forged := mustDecode(t, stored[4].Data)
			forged.Outcome = "denied"
			if err := fork.InOrg(ctx, org, func(tx store.OrgTx) error { err := l.Append(ctx, tx, forged); return err }); err != nil {
				t.Fatal(err)
			}
			for i := 5; i < 10; i++ {
				e := mustDecode(t, stored[i].Data)
				if err := fork.InOrg(ctx, org, func(tx store.OrgTx) error { err := l.Append(ctx, tx, e); return err }); err != nil {
					t.Fatal(err)
				}
			}
			forkOld, fc := checkpoint(t, fork, l, org)
			if fc.Origin != l.Origin(org) || fc.Size != 10 || audit.SameCheckpoint(forkOld, older) {
				t.Fatalf("fork checkpoint %+v", fc)
			}
			if rep, err := audit.VerifyExport(data, l.Keys(), forkOld); err != nil || rep.OK() || rep.OlderSize != 10 || rep.Consistency != audit.ConsistencyFailed {
				t.Fatalf("a forked checkpoint: want the consistency check failed at 10, got %+v, %v", rep, err)
			}
			// A checkpoint bigger than the export means truncation.
			appendN(t, fork, l, org, 10, 20)
			forkBig, _ := checkpoint(t, fork, l, org)
			if rep, err := audit.VerifyExport(data, l.Keys(), forkBig); err != nil || rep.OK() || rep.OlderSize != 30 || rep.Consistency != audit.ConsistencyFailed {
				t.Fatalf("a checkpoint of 30 leaves against an export of 25: %+v, %v", rep, err)
			}
			// Another org's checkpoint is not this log's.
			other, _ := checkpoint(t, fork, l, "other-org")
			if rep, err := audit.VerifyExport(data, l.Keys(), other); err != nil || rep.OK() || rep.Consistency != audit.ConsistencyNotChecked {
				t.Fatalf("another origin's checkpoint: %+v, %v", rep, err)
			}
		})

		t.Run("member directory", func(t *testing.T) {
			t.Parallel()
			m, ok := ex.Members[f.User.ID]
			if !ok || m.Kind != "user" || m.Name != f.User.Name || m.Email != f.User.Email {
				t.Fatalf("member directory %+v lacks %s", ex.Members, f.User.ID)
			}
			// The directory is outside the hashed bytes: anonymising or dropping it keeps the export valid.
			for _, members := range []map[string]audit.Member{
				{f.User.ID: {Kind: "user", Name: "former member"}},
				nil,
				{f.User.ID: {Kind: "user", Name: "x"}, "ghost": {Kind: "user", Name: "added"}},
			} {
				edited := ex
				edited.Members = members
				rep, err := audit.VerifyExport(marshal(t, edited), l.Keys(), older)
				if err != nil || !rep.OK() || rep.Size != 25 {
					t.Fatalf("with members %v: %+v, %v", members, rep, err)
				}
			}
			// No personal data in the leaves themselves.
			for i, lf := range ex.Leaves {
				if bytes.Contains(lf, []byte(f.User.Email)) || bytes.Contains(lf, []byte(f.User.Name)) {
					t.Fatalf("leaf %d holds the member's name or email: %s", i, lf)
				}
			}
		})

		t.Run("wrong key", func(t *testing.T) {
			t.Parallel()
			if rep, err := audit.VerifyExport(data, newKeys(t).Verifiers, nil); err == nil && rep.OK() {
				t.Fatalf("verified with another key: %+v", rep)
			}
			// Listing the wrong key in the export does not help either: the verifier brings its own.
			if rep, err := audit.VerifyExport(data, newKeys(t).Verifiers, older); err == nil && rep.OK() {
				t.Fatalf("verified with another key and an older checkpoint: %+v", rep)
			}
		})

		t.Run("edited leaves", func(t *testing.T) {
			t.Parallel()
			edits := map[string]func(*audit.Export){
				"leaf changed":   func(e *audit.Export) { e.Leaves[3] = bytes.Replace(e.Leaves[3], []byte(`"h3"`), []byte(`"h9"`), 1) },
				"leaf dropped":   func(e *audit.Export) { e.Leaves = append(e.Leaves[:3:3], e.Leaves[4:]...) },
				"leaf added":     func(e *audit.Export) { e.Leaves = append(e.Leaves, e.Leaves[0]) },
				"leaves swapped": func(e *audit.Export) { e.Leaves[1], e.Leaves[2] = e.Leaves[2], e.Leaves[1] },
				"tail cut":       func(e *audit.Export) { e.Leaves = e.Leaves[:20] },
				"origin":         func(e *audit.Export) { e.Origin = l.Origin("other") },
				"format":         func(e *audit.Export) { e.Format = "ony-audit-export/v2" },
				"no checkpoint":  func(e *audit.Export) { e.Checkpoint = "" },
			}
			for name, edit := range edits {
				var e audit.Export
				if err := json.Unmarshal(data, &e); err != nil {
					t.Fatal(err)
				}
				edit(&e)
				if rep, err := audit.VerifyExport(marshal(t, e), l.Keys(), nil); err == nil && rep.OK() {
					t.Errorf("%s: verified: %+v", name, rep)
				}
				// An export that does not verify is not checked against an older checkpoint, and says so.
				if rep, err := audit.VerifyExport(marshal(t, e), l.Keys(), older); err == nil && (rep.OK() || rep.Consistency != audit.ConsistencyNotChecked) {
					t.Errorf("%s, with an older checkpoint: %+v", name, rep)
				}
			}
			for _, junk := range []string{"", "{", "null", "[]", `{"format":"ony-audit-export/v1"}`} {
				if rep, err := audit.VerifyExport([]byte(junk), l.Keys(), nil); err == nil && rep.OK() {
					t.Errorf("%q verified: %+v", junk, rep)
				}
			}
		})
	})
}

// TestExportRefusesUnknownOrg: an id that is neither an organization nor a log is refused before
// anything is signed — no export, no checkpoint stored — while the instance log, empty or not, and a
// log whose organization is gone stay exportable. An empty log exports its leaves as JSON null.
func TestExportRefusesUnknownOrg(t *testing.T) {
	t.Parallel()
	dialects(t, func(t *testing.T, dialect string) {
		s := openStore(t, dialect)
		l := newLog(t)
		for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
			var buf bytes.Buffer
			if err := l.Export(ctx, s, id, &buf); !errors.Is(err, audit.ErrUnknownOrg) || !strings.Contains(err.Error(), id) || buf.Len() != 0 {
				t.Errorf("export of %q: %v, %d bytes written; want ErrUnknownOrg naming it and nothing written", id, err, buf.Len())
			}
			err := s.InOrg(ctx, id, func(tx store.OrgTx) error {
				_, err := tx.AuditLatestCheckpoint(ctx)
				return err
			})
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("after the refused export of %q, a checkpoint is stored for it: %v", id, err)
			}
		}
		// The instance log before any erasure: no leaf, a signed checkpoint of size 0, leaves null.
		data := exportBytes(t, l, s, store.InstanceLogID)
		if !bytes.Contains(data, []byte(`"leaves": null`)) {
			t.Errorf("the empty instance log's export does not say \"leaves\": null:\n%s", data)
		}
		if rep, err := audit.VerifyExport(data, l.Keys(), nil); err != nil || !rep.OK() || rep.Size != 0 {
			t.Errorf("the empty instance log's export: %+v, %v", rep, err)
		}
		// A log whose organization row is gone (the audit tables need none) is still exportable.
		org := orgID(t)
		appendN(t, s, l, org, 0, 3)
		if rep, err := audit.VerifyExport(exportBytes(t, l, s, org), l.Keys(), nil); err != nil || !rep.OK() || rep.Size != 3 {
			t.Errorf("export of a log without an organization row: %+v, %v", rep, err)
		}
	})
}
