package audit_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/ony-ai/ony/audit"
)

// fuzzKeys is a fixed signing key, so that every fuzz worker process signs and verifies alike.
func fuzzKeys(t testing.TB) *audit.Keys {
	t.Helper()
	skey, _, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), instance)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.LoadOrCreateKeys(t.TempDir(), "", []string{skey})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// FuzzVerifyExport mutates a valid export. Whatever the bytes, VerifyExport either refuses them or
// accepts exactly the original leaves under a checkpoint of the original size and root: no edit to an
// export gets past it without a signature.
func FuzzVerifyExport(f *testing.F) {
	keys := fuzzKeys(f)
	const origin = instance + "/orgs/fuzz"
	ex, want := memExport(f, keys, origin, 6)
	valid := marshal(f, ex)
	indented, _ := json.MarshalIndent(ex, "", " ")
	older, err := keys.Sign(audit.Checkpoint{Origin: origin, Size: want.Size, Root: want.Root})
	if err != nil {
		f.Fatal(err)
	}
	if rep, err := audit.VerifyExport(valid, keys.Verifiers, older); err != nil || !rep.OK() {
		f.Fatalf("seed export does not verify: %+v, %v", rep, err)
	}
	f.Add(valid)
	f.Add(indented)
	f.Add([]byte(`{"format":"ony-audit-export/v1"}`))
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
		if len(got.Leaves) != len(ex.Leaves) {
			t.Fatalf("accepted %d leaves, the log has %d", len(got.Leaves), len(ex.Leaves))
		}
		for i := range got.Leaves {
			if !bytes.Equal(got.Leaves[i], ex.Leaves[i]) {
				t.Fatalf("accepted leaf %d %q, the log's is %q", i, got.Leaves[i], ex.Leaves[i])
			}
		}
		// A verifier that kept the checkpoint gets the same answer.
		if rep2, err := audit.VerifyExport(data, keys.Verifiers, older); err != nil || !rep2.OK() {
			t.Fatalf("accepted alone but not against its own checkpoint: %+v, %v", rep2, err)
		}
	})
}
