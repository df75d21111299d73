package keyring

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fixedEntry returns a deterministic entry so failures reproduce; real keys come from Generate.
func fixedEntry(version uint16) string {
	raw := bytes.Repeat([]byte{byte(version), byte(version >> 8), 0xA5, 0x5A}, keySize/4)
	return fmt.Sprintf("v%d:%s", version, base64.StdEncoding.EncodeToString(raw))
}

func mustParse(t testing.TB, entries ...string) *Keyring {
	t.Helper()
	k, err := Parse(entries)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustParse(t, fixedEntry(1))
	tests := []struct {
		name    string
		pt, aad []byte
	}{
		{"small", []byte("hunter2"), []byte("handoff.payload|org_1|h_1")},
		{"empty plaintext", nil, []byte("row")},
		{"nil aad", []byte("secret"), nil},
		{"64k", bytes.Repeat([]byte{7}, 64<<10), []byte("row")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ct, err := k.Seal(tc.pt, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(tc.pt)+Overhead {
				t.Errorf("len(ct) = %d, want %d", len(ct), len(tc.pt)+Overhead)
			}
			got, err := k.Open(ct, tc.aad)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.pt) {
				t.Errorf("Open = %q, want %q", got, tc.pt)
			}
			ct2, _ := k.Seal(tc.pt, tc.aad)
			if bytes.Equal(ct, ct2) {
				t.Error("two seals are identical: nonce not random")
			}
		})
	}
}

// TestSealFormat decrypts Seal's output with crypto/cipher directly, pinning the documented
// layout: version (big-endian) || nonce || ciphertext+tag, with aad passed through unchanged.
func TestSealFormat(t *testing.T) {
	t.Parallel()
	entry := fixedEntry(258)
	k := mustParse(t, entry)
	aad := []byte("handoff.payload|org_1|h_1")
	ct, err := k.Seal([]byte("payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.BigEndian.Uint16(ct); v != 258 || ct[0] != 1 || ct[1] != 2 {
		t.Fatalf("version header = % x, want 01 02", ct[:2])
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(entry, ":", 2)[1])
	block, _ := aes.NewCipher(raw)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, ct[2:14], ct[14:], aad)
	if err != nil || string(pt) != "payload" {
		t.Fatalf("independent GCM open = %q, %v", pt, err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	k := mustParse(t, fixedEntry(1))
	aad := []byte("handoff.payload|org_1|h_1")
	ct, err := k.Seal([]byte("the payload"), aad)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("wrong aad", func(t *testing.T) {
		t.Parallel()
		for _, bad := range [][]byte{nil, []byte("handoff.payload|org_1|h_2"), []byte("handoff.payload|org_2|h_1"), append([]byte(nil), append(aad, 0)...)} {
			if _, err := k.Open(ct, bad); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open(aad=%q) = %v, want ErrDecrypt", bad, err)
			}
		}
	})
	t.Run("tampered byte", func(t *testing.T) {
		t.Parallel()
		for i := range ct {
			for _, mask := range []byte{0x01, 0x80} {
				bad := bytes.Clone(ct)
				bad[i] ^= mask
				_, err := k.Open(bad, aad)
				if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("Open(flip byte %d mask %#x) = %v, want failure", i, mask, err)
				}
			}
		}
	})
	t.Run("truncated or extended", func(t *testing.T) {
		t.Parallel()
		for n := range len(ct) {
			if _, err := k.Open(ct[:n], aad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open(len %d) = %v, want ErrDecrypt", n, err)
			}
		}
		if _, err := k.Open(append(bytes.Clone(ct), 0), aad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("Open(extended) = %v, want ErrDecrypt", err)
		}
	})
	t.Run("short inputs", func(t *testing.T) {
		t.Parallel()
		for _, in := range [][]byte{nil, {}, {0}, {0, 1}, make([]byte, Overhead-1), make([]byte, Overhead)} {
			if _, err := k.Open(in, aad); err == nil {
				t.Fatalf("Open(%x) succeeded", in)
			}
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		t.Parallel()
		bad := bytes.Clone(ct)
		binary.BigEndian.PutUint16(bad, 7)
		if _, err := k.Open(bad, aad); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Open(v7) = %v, want ErrUnknownKey", err)
		}
	})
}

func TestRotation(t *testing.T) {
	t.Parallel()
	aad := []byte("row")
	old := mustParse(t, fixedEntry(1))
	ctOld, _ := old.Seal([]byte("sealed under v1"), aad)

	// Order of entries must not matter: the highest version is current.
	for _, entries := range [][]string{{fixedEntry(1), fixedEntry(2)}, {fixedEntry(2), fixedEntry(1)}} {
		k := mustParse(t, entries...)
		if k.CurrentVersion() != 2 {
			t.Fatalf("CurrentVersion = %d, want 2", k.CurrentVersion())
		}
		if pt, err := k.Open(ctOld, aad); err != nil || string(pt) != "sealed under v1" {
			t.Fatalf("Open(old ciphertext) = %q, %v", pt, err)
		}
		ctNew, _ := k.Seal([]byte("sealed under v2"), aad)
		if v := binary.BigEndian.Uint16(ctNew); v != 2 {
			t.Fatalf("new seal uses v%d, want v2", v)
		}
		if _, err := old.Open(ctNew, aad); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("old keyring Open(v2 ciphertext) = %v, want ErrUnknownKey", err)
		}
	}
	// Dropping v1 after re-encryption makes v1 ciphertexts unknown, not garbage.
	if _, err := mustParse(t, fixedEntry(2)).Open(ctOld, aad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Open(v1 ciphertext) without v1 = %v, want ErrUnknownKey", err)
	}
	if v := mustParse(t, fixedEntry(65535), fixedEntry(1)).CurrentVersion(); v != 65535 {
		t.Fatalf("CurrentVersion = %d, want 65535", v)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	key := fixedEntry(1)[len("v1:"):]
	tests := []struct {
		name    string
		entries []string
	}{
		{"none", nil},
		{"empty entry", []string{""}},
		{"no colon", []string{"v1" + key}},
		{"no version", []string{":" + key}},
		{"missing v", []string{"1:" + key}},
		{"upper V", []string{"V1:" + key}},
		{"v0", []string{"v0:" + key}},
		{"v65536", []string{"v65536:" + key}},
		{"v leading zero", []string{"v01:" + key}},
		{"v sign", []string{"v+1:" + key}},
		{"v huge", []string{"v99999999999999999999:" + key}},
		{"empty key", []string{"v1:"}},
		{"short key", []string{"v1:" + base64.StdEncoding.EncodeToString(make([]byte, 16))}},
		{"long key", []string{"v1:" + base64.StdEncoding.EncodeToString(make([]byte, 33))}},
		{"unpadded", []string{"v1:" + strings.TrimRight(key, "=")}},
		{"url alphabet", []string{"v1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))}},
		{"inner space", []string{"v1: " + key}},
		{"inner newline", []string{"v1:" + key[:10] + "\n" + key[10:]}},
		{"duplicate version", []string{fixedEntry(1), "v1:" + fixedEntry(2)[3:]}},
		{"same key twice", []string{"v1:" + key, "v2:" + key}},
		{"one bad of two", []string{fixedEntry(1), "v2:nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if k, err := Parse(tc.entries); err == nil {
				t.Errorf("Parse(%q) = %v, want error", tc.entries, k)
			}
		})
	}
	if _, err := Parse([]string{"  " + fixedEntry(1) + " \r"}); err != nil {
		t.Errorf("Parse(entry with surrounding space) = %v", err)
	}
}

// TestParseErrorsNeverEchoKeys plants a canary in every part of malformed entries and checks
// that no error message repeats it, whole or base64-decoded.
func TestParseErrorsNeverEchoKeys(t *testing.T) {
	t.Parallel()
	const canary = "CANARYxKEYxMATERIAL"
	canary32 := []byte(canary + "0123456789abc") // 32 bytes
	valid := base64.StdEncoding.EncodeToString(canary32)
	entries := []string{
		canary,
		"v1:" + canary,
		"v1:" + canary + "!!",
		"v1:" + valid + "AAAA",
		"v1:" + strings.TrimRight(valid, "="),
		"v1:" + valid[:len(valid)-2] + "\n=",
		"v1" + valid,
		canary + ":" + valid,
		"v" + canary + ":" + valid,
		"v1:" + base64.StdEncoding.EncodeToString(append(canary32, canary...)),
		"v1:" + base64.StdEncoding.EncodeToString(canary32[:31]),
	}
	for _, e := range entries {
		for _, list := range [][]string{{e}, {fixedEntry(9), e}, {"v1:" + valid, "v2:" + valid}} {
			_, err := Parse(list)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", list)
			}
			msg := err.Error()
			for _, secret := range []string{canary, valid, valid[:16], fixedEntry(9)[3:]} {
				if strings.Contains(msg, secret) {
					t.Errorf("Parse error %q leaks %q", msg, secret)
				}
			}
		}
	}
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	if a == b {
		t.Fatal("Generate returned the same key twice")
	}
	k := mustParse(t, a)
	if k.CurrentVersion() != 1 {
		t.Fatalf("CurrentVersion = %d, want 1", k.CurrentVersion())
	}
	if _, err := Parse([]string{a, "v2:" + b[3:]}); err != nil {
		t.Fatalf("Parse(generated v1, v2) = %v", err)
	}
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "nested")
	k1, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keyring")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if perm := st.Mode().Perm(); perm != 0o600 {
			t.Errorf("keyring file mode = %04o, want 0600", perm)
		}
		dst, _ := os.Stat(dir)
		if perm := dst.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("keyring dir mode = %04o, want no group/other access", perm)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".keyring-*")); len(leftovers) != 0 {
		t.Errorf("temp files left behind: %v", leftovers)
	}
	ct, _ := k1.Seal([]byte("persisted"), []byte("row"))

	k2, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k2.Open(ct, []byte("row")); err != nil || string(pt) != "persisted" {
		t.Fatalf("reloaded keyring Open = %q, %v; the file was not reused", pt, err)
	}

	// Explicit entries win and leave the directory alone.
	other := filepath.Join(t.TempDir(), "unused")
	k3, err := LoadOrCreate(other, []string{fixedEntry(3)})
	if err != nil || k3.CurrentVersion() != 3 {
		t.Fatalf("LoadOrCreate(entries) = %v, %v", k3, err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadOrCreate(entries) touched %s: %v", other, err)
	}
}

func TestLoadOrCreateReadsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring")
	content := "# comment\n\n" + fixedEntry(1) + "\r\n   " + fixedEntry(2) + "  \n# trailing comment\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.CurrentVersion() != 2 {
		t.Fatalf("CurrentVersion = %d, want 2", k.CurrentVersion())
	}
}

func TestLoadOrCreateRefuses(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not enforced on Windows")
	}
	tests := []struct {
		name    string
		mode    fs.FileMode
		content string
		want    []string
	}{
		{"group readable", 0o640, fixedEntry(1) + "\n", []string{"chmod 600", "0640"}},
		{"world readable", 0o644, fixedEntry(1) + "\n", []string{"chmod 600"}},
		{"group writable", 0o620, fixedEntry(1) + "\n", []string{"chmod 600"}},
		{"empty", 0o600, "", []string{"no keys"}},
		{"comments only", 0o600, "# nothing\n", []string{"no keys"}},
		{"garbage", 0o600, "not a key\n", []string{"entry 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "keyring")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir, nil)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded")
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), fixedEntry(1)[3:]) {
				t.Errorf("error %q leaks the key", err)
			}
			if got, _ := os.ReadFile(path); string(got) != tc.content {
				t.Error("refused file was modified")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "keyring"), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(dir, nil); err == nil {
			t.Fatal("LoadOrCreate accepted a directory as key file")
		}
	})
}

// TestLoadOrCreateConcurrent starts many creators on one empty directory: all must end up with
// the same key, or data sealed by one would be unreadable to the others after a restart.
func TestLoadOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state")
	const n = 16
	rings := make([]*Keyring, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { rings[i], errs[i] = LoadOrCreate(dir, nil) })
	}
	wg.Wait()
	final, err := LoadOrCreate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range rings {
		if errs[i] != nil {
			t.Fatalf("creator %d: %v", i, errs[i])
		}
		ct, _ := k.Seal([]byte("x"), nil)
		if _, err := final.Open(ct, nil); err != nil {
			t.Fatalf("creator %d holds a key that is not on disk: %v", i, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	k := mustParse(t, fixedEntry(1), fixedEntry(2))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			aad := []byte(fmt.Sprint("row|", i))
			for j := range 200 {
				pt := []byte(fmt.Sprint(i, j))
				ct, err := k.Seal(pt, aad)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := k.Open(ct, aad); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open = %q, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fuzzSeeds are Seal outputs built independently with crypto/cipher and fixed nonces, so every
// fuzz worker agrees on which inputs are genuine.
type fuzzSeed struct{ ct, aad, pt []byte }

func fuzzSeeds(t testing.TB) (*Keyring, map[string]fuzzSeed) {
	entries := []string{fixedEntry(1), fixedEntry(2)}
	k := mustParse(t, entries...)
	seeds := map[string]fuzzSeed{}
	for i, s := range []struct{ pt, aad string }{
		{"", ""}, {"a", "row|1"}, {"handoff payload", "handoff.payload|org_1|h_1"}, {strings.Repeat("x", 100), ""},
	} {
		v := uint16(i%2 + 1)
		raw, _ := base64.StdEncoding.DecodeString(entries[v-1][3:])
		block, _ := aes.NewCipher(raw)
		gcm, _ := cipher.NewGCM(block)
		nonce := bytes.Repeat([]byte{byte(i)}, nonceSize)
		ct := binary.BigEndian.AppendUint16(nil, v)
		ct = append(ct, nonce...)
		ct = gcm.Seal(ct, nonce, []byte(s.pt), []byte(s.aad))
		seeds[string(ct)] = fuzzSeed{ct: ct, aad: []byte(s.aad), pt: []byte(s.pt)}
	}
	return k, seeds
}

// FuzzOpen checks that Open never panics and only ever succeeds on a genuine, unmodified
// ciphertext with its own aad.
func FuzzOpen(f *testing.F) {
	k, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s.ct, s.aad)
		f.Add(s.ct[:len(s.ct)-1], s.aad)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0, 1}, []byte("row"))
	f.Add(make([]byte, Overhead), []byte{})
	f.Add(append([]byte{0xff, 0xff}, make([]byte, 40)...), []byte{})
	f.Fuzz(func(t *testing.T, ct, aad []byte) {
		pt, err := k.Open(ct, aad)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("Open error %v is neither ErrDecrypt nor ErrUnknownKey", err)
			}
			return
		}
		s, ok := seeds[string(ct)]
		if !ok || !bytes.Equal(aad, s.aad) || !bytes.Equal(pt, s.pt) {
			t.Fatalf("Open accepted a forged ciphertext %x (aad %q) -> %q", ct, aad, pt)
		}
	})
}

func BenchmarkSeal4K(b *testing.B) {
	k := mustParse(b, fixedEntry(1))
	pt := make([]byte, 4096)
	aad := []byte("handoff.payload|org_1|h_1")
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		if _, err := k.Seal(pt, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen4K(b *testing.B) {
	k := mustParse(b, fixedEntry(1))
	aad := []byte("handoff.payload|org_1|h_1")
	ct, _ := k.Seal(make([]byte, 4096), aad)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := k.Open(ct, aad); err != nil {
			b.Fatal(err)
		}
	}
}

func TestZeroKeyring(t *testing.T) {
	t.Parallel()
	var k Keyring
	if k.CurrentVersion() != 0 {
		t.Error("zero Keyring has a current version")
	}
	if _, err := k.Seal([]byte("x"), nil); err == nil {
		t.Error("zero Keyring sealed")
	}
	ct, _ := mustParse(t, fixedEntry(1)).Seal([]byte("x"), nil)
	if _, err := k.Open(ct, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("zero Keyring Open = %v, want ErrUnknownKey", err)
	}
}
