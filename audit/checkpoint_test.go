package audit_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/audit"
)

// memExport builds a valid export of n leaves, in memory, signed with keys.
func memExport(t testing.TB, keys *audit.Keys, origin string, n int) (audit.Export, audit.Checkpoint) {
	t.Helper()
	ex := audit.Export{Format: audit.ExportFormat, Origin: origin, Keys: keys.Verifiers,
		Members: map[string]audit.Member{"u1": {Kind: "user", Name: "Ada Lovelace", Email: "ada@example.com"}}}
	var hs memHashes
	for i := 0; i < n; i++ {
		e := event(i)
		e.V, e.At = 1, fixedTime.Add(timeStep*time.Duration(i))
		data, err := e.Encode(known)
		if err != nil {
			t.Fatal(err)
		}
		x, err := tlog.StoredHashes(int64(i), data, hs)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, x...)
		ex.Leaves = append(ex.Leaves, data)
	}
	root, err := tlog.TreeHash(int64(n), hs)
	if err != nil {
		t.Fatal(err)
	}
	c := audit.Checkpoint{Origin: origin, Size: int64(n), Root: root}
	signed, err := keys.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	ex.Checkpoint = string(signed)
	return ex, c
}

func marshal(t testing.TB, ex audit.Export) []byte {
	t.Helper()
	data, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// editBody rewrites one line of a signed note's body, keeping its signature lines.
func editBody(signed []byte, line int, value string) []byte {
	i := bytes.Index(signed, []byte("\n\n"))
	lines := strings.Split(string(signed[:i+1]), "\n")
	lines[line] = value
	return append([]byte(strings.Join(lines, "\n")), signed[i+1:]...)
}

// TestForgedCheckpointsRejected requires OpenCheckpoint and VerifyExport to refuse checkpoints that are
// signed by another key (even one with the same name), edited after signing, or not signed at all.
func TestForgedCheckpointsRejected(t *testing.T) {
	t.Parallel()
	keys := newKeys(t)
	other := newKeys(t) // also named "ony-test"
	const origin = instance + "/orgs/o1"
	ex, c := memExport(t, keys, origin, 9)
	signed := []byte(ex.Checkpoint)

	// The genuine checkpoint opens, under its own key and alongside unknown keys (rotation).
	got, err := audit.OpenCheckpoint(signed, keys.Verifiers)
	if err != nil || got != c {
		t.Fatalf("genuine checkpoint: %+v, %v", got, err)
	}
	if got, err := audit.OpenCheckpoint(signed, append(append([]string{}, other.Verifiers...), keys.Verifiers...)); err != nil || got != c {
		t.Fatalf("genuine checkpoint among several keys: %+v, %v", got, err)
	}
	if rep, err := audit.VerifyExport(marshal(t, ex), keys.Verifiers, nil); err != nil || !rep.OK() || rep.Size != 9 {
		t.Fatalf("genuine export: %+v, %v", rep, err)
	}
	if !audit.SameCheckpoint(signed, signed) {
		t.Fatal("SameCheckpoint(x, x) is false")
	}

	otherSigned, err := other.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	_, vk := genKey(t, "ony-test")
	rootBad := c.Root
	rootBad[0] ^= 1
	body := []byte(c.Body())
	sigStart := bytes.Index(signed, []byte("\n\n")) + 2

	forgeries := map[string][]byte{
		"signed with a different key":              otherSigned,
		"another key's signature under our key id": withSig(otherSigned, func(sig []byte) { copy(sig[:4], sigBytes(signed)[:4]) }),
		"size edited":                       editBody(signed, 1, strconv.FormatInt(c.Size+1, 10)),
		"size edited down":                  editBody(signed, 1, strconv.FormatInt(c.Size-1, 10)),
		"size with a leading zero":          editBody(signed, 1, "0"+strconv.FormatInt(c.Size, 10)),
		"root edited":                       editBody(signed, 2, base64.StdEncoding.EncodeToString(rootBad[:])),
		"origin edited":                     editBody(signed, 0, instance+"/orgs/o2"),
		"extension line added":              append(append(append([]byte{}, signed[:sigStart-1]...), "ext\n\n"...), signed[sigStart:]...),
		"unsigned body":                     body,
		"body and blank line, no signature": append(append([]byte{}, body...), '\n'),
		"signature bytes flipped":           withSig(signed, func(sig []byte) { sig[10] ^= 0x40 }),
		"key id flipped":                    withSig(signed, func(sig []byte) { sig[0] ^= 1 }),
		"empty":                             nil,
	}
	for name, forged := range forgeries {
		if got, err := audit.OpenCheckpoint(forged, keys.Verifiers); err == nil {
			t.Errorf("%s: OpenCheckpoint accepted %+v", name, got)
		}
		bad := ex
		bad.Checkpoint = string(forged)
		if rep, err := audit.VerifyExport(marshal(t, bad), keys.Verifiers, nil); err == nil && rep.OK() {
			t.Errorf("%s: VerifyExport accepted it: %+v", name, rep)
		}
		// The keys inside the export are not trusted: listing the forger's key there changes nothing.
		bad.Keys = append(append([]string{}, other.Verifiers...), vk)
		if rep, err := audit.VerifyExport(marshal(t, bad), keys.Verifiers, nil); err == nil && rep.OK() {
			t.Errorf("%s, forger's key in the export: VerifyExport accepted it: %+v", name, rep)
		}
	}
	// Verifying with the wrong key, or none, fails even for the genuine export.
	if rep, err := audit.VerifyExport(marshal(t, ex), other.Verifiers, nil); err == nil && rep.OK() {
		t.Errorf("VerifyExport with another key accepted the export: %+v", rep)
	}
	if _, err := audit.VerifyExport(marshal(t, ex), nil, nil); err == nil {
		t.Error("VerifyExport with no key succeeded")
	}
	if _, err := audit.OpenCheckpoint(signed, []string{"not a key"}); err == nil {
		t.Error("OpenCheckpoint accepted a malformed verifier key")
	}
}

// TestParseCheckpoint covers the C2SP body format.
func TestParseCheckpoint(t *testing.T) {
	t.Parallel()
	root := sha256.Sum256([]byte("r"))
	r64 := base64.StdEncoding.EncodeToString(root[:])
	c, err := audit.ParseCheckpoint("ony/orgs/x\n12\n" + r64 + "\n")
	if err != nil || c.Origin != "ony/orgs/x" || c.Size != 12 || c.Root != root {
		t.Fatalf("ParseCheckpoint: %+v, %v", c, err)
	}
	if c.Body() != "ony/orgs/x\n12\n"+r64+"\n" {
		t.Fatalf("Body: %q", c.Body())
	}
	if c2, err := audit.ParseCheckpoint(c.Body() + "extension\n"); err != nil || c2 != c {
		t.Fatalf("extension lines: %+v, %v", c2, err)
	}
	for _, bad := range []string{
		"", "ony/orgs/x\n12\n" + r64, "\n12\n" + r64 + "\n", "ony\n-1\n" + r64 + "\n", "ony\n012\n" + r64 + "\n",
		"ony\n+12\n" + r64 + "\n", "ony\n 12\n" + r64 + "\n", "ony\nx\n" + r64 + "\n", "ony\n12\n" + r64[:43] + "\n",
		"ony\n12\n" + base64.RawStdEncoding.EncodeToString(root[:]) + "\n", "ony\n12\n" + base64.StdEncoding.EncodeToString(root[:31]) + "\n",
		"ony\n99999999999999999999\n" + r64 + "\n",
	} {
		if c, err := audit.ParseCheckpoint(bad); err == nil {
			t.Errorf("ParseCheckpoint(%q) = %+v", bad, c)
		}
	}
}

// TestKeys covers key loading: a generated key file is private, reused on the next start, and keys
// from configuration sign in order.
func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := audit.LoadOrCreateKeys(dir, "ony-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, audit.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	k2, err := audit.LoadOrCreateKeys(dir, "ony-a", nil)
	if err != nil || len(k2.Verifiers) != 1 || k2.Verifiers[0] != k1.Verifiers[0] {
		t.Fatalf("reloaded keys differ: %v / %v (%v)", k1.Verifiers, k2.Verifiers, err)
	}
	if !strings.HasPrefix(k1.Verifiers[0], "ony-a+") {
		t.Fatalf("verifier key %q", k1.Verifiers[0])
	}
	if err := os.Chmod(filepath.Join(dir, audit.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadOrCreateKeys(dir, "ony-a", nil); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}

	s1, v1 := genKey(t, "new")
	s2, v2 := genKey(t, "old")
	k, err := audit.LoadOrCreateKeys(t.TempDir(), "unused", []string{s1, " " + s2 + "\n"})
	if err != nil || len(k.Verifiers) != 2 || k.Verifiers[0] != v1 || k.Verifiers[1] != v2 {
		t.Fatalf("configured keys: %v (%v)", k, err)
	}
	c := audit.Checkpoint{Origin: "o", Size: 1}
	signed, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	// During a rotation both keys sign; a verifier knowing either accepts.
	for _, vk := range []string{v1, v2} {
		if got, err := audit.OpenCheckpoint(signed, []string{vk}); err != nil || got != c {
			t.Errorf("checkpoint under %s: %+v, %v", vk, got, err)
		}
	}
	for _, bad := range [][]string{{"garbage"}, {v1}, {"PRIVATE+KEY+x+00000000+AAAA"}} {
		_, err := audit.LoadOrCreateKeys(t.TempDir(), "x", bad)
		if err == nil {
			t.Errorf("LoadOrCreateKeys accepted %q", bad)
		} else if strings.Contains(err.Error(), bad[0]) {
			t.Errorf("the error quotes the key: %v", err)
		}
	}
}

func genKey(t testing.TB, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// sigBytes decodes the first signature line of a note: the key id (4 bytes) then the signature.
func sigBytes(signed []byte) []byte {
	i := bytes.Index(signed, []byte("\n\n")) + 2
	line := strings.TrimSuffix(string(signed[i:]), "\n")
	line = strings.SplitN(line, "\n", 2)[0]
	raw, _ := base64.StdEncoding.DecodeString(line[strings.LastIndex(line, " ")+1:])
	return raw
}

// withSig rewrites the first signature line's bytes with edit.
func withSig(signed []byte, edit func(sig []byte)) []byte {
	i := bytes.Index(signed, []byte("\n\n")) + 2
	line := strings.SplitN(strings.TrimSuffix(string(signed[i:]), "\n"), "\n", 2)[0]
	sp := strings.LastIndex(line, " ")
	raw := sigBytes(signed)
	edit(raw)
	out := append([]byte{}, signed[:i]...)
	out = append(out, line[:sp+1]+base64.StdEncoding.EncodeToString(raw)+"\n"...)
	return out
}
