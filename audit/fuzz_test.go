package audit_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
)

// FuzzVerifyExport mutates a valid export. Whatever the bytes, VerifyExport either refuses them or
// accepts exactly the original leaves under a checkpoint of the original size and root: no edit to an
// export gets past it without a new signature.
//
// The seeds are deliberately tiny (short origin and key name, leaves of a few bytes — VerifyExport hashes
// leaf bytes without reading them): the fuzzer minimises every new interesting input for up to a minute,
// in time quadratic in its length, and with kilobyte-sized exports a 30 s run would do nothing else.
func FuzzVerifyExport(f *testing.F) {
	// A fixed key, so every fuzz worker process signs and verifies alike.
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "k")
	if err != nil {
		f.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(f.TempDir(), "", []string{skey})
	if err != nil {
		f.Fatal(err)
	}
	leaves := [][]byte{[]byte("a"), []byte("bc"), []byte(`{"v":1}`)}
	var hs memHashes
	for i, lf := range leaves {
		x, err := tlog.StoredHashes(int64(i), lf, hs)
		if err != nil {
			f.Fatal(err)
		}
		hs = append(hs, x...)
	}
	root, _ := tlog.TreeHash(int64(len(leaves)), hs)
	want := audit.Checkpoint{Origin: "o", Size: int64(len(leaves)), Root: root}
	signed, err := keys.Sign(want)
	if err != nil {
		f.Fatal(err)
	}
	ex := audit.Export{Format: audit.ExportFormat, Origin: want.Origin, Checkpoint: string(signed), Leaves: leaves}
	valid := marshal(f, ex)
	if rep, err := audit.VerifyExport(valid, keys.Verifiers, signed); err != nil || !rep.OK() {
		f.Fatalf("seed export does not verify: %+v, %v", rep, err)
	}
	f.Add(valid)
	withMembers := ex
	withMembers.Members = map[string]audit.Member{"u": {Kind: "user", Name: "A"}}
	f.Add(marshal(f, withMembers))
	f.Add([]byte(`{"format":"ony-audit-export/v1","leaves":[]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := audit.VerifyExport(data, keys.Verifiers, nil)
		if err != nil || !rep.OK() {
			return
		}
		var got audit.Export
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("VerifyExport accepted bytes that do not parse: %v", err)
		}
		c, err := audit.OpenCheckpoint([]byte(got.Checkpoint), keys.Verifiers)
		if err != nil {
			t.Fatalf("VerifyExport accepted a checkpoint that does not open: %v", err)
		}
		// The only checkpoint ever signed with this key is the original's.
		if c != want {
			t.Fatalf("accepted checkpoint %+v, the signed one is %+v", c, want)
		}
		if rep.Size != want.Size || rep.CheckpointSize != want.Size || rep.Origin != want.Origin || rep.Root != rootB64(want.Root) {
			t.Fatalf("report %+v for checkpoint %+v", rep, want)
		}
		if len(got.Leaves) != len(leaves) {
			t.Fatalf("accepted %d leaves, the log has %d", len(got.Leaves), len(leaves))
		}
		for i := range got.Leaves {
			if !bytes.Equal(got.Leaves[i], leaves[i]) {
				t.Fatalf("accepted leaf %d %q, the log's is %q", i, got.Leaves[i], leaves[i])
			}
		}
		// A verifier that kept the checkpoint gets the same answer.
		if rep2, err := audit.VerifyExport(data, keys.Verifiers, signed); err != nil || !rep2.OK() {
			t.Fatalf("accepted alone but not against its own checkpoint: %+v, %v", rep2, err)
		}
	})
}
