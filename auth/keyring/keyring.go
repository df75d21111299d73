// Package keyring encrypts small secrets and payloads at rest with AES-256-GCM under versioned keys,
// binding each ciphertext to its row so it cannot be moved to another.
package keyring

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

var (
	// ErrUnknownKey means the ciphertext names a key version this keyring does not hold.
	ErrUnknownKey = errors.New("keyring: unknown key version")
	// ErrDecrypt covers every other failure to open: truncation, tampering, or the wrong aad.
	ErrDecrypt = errors.New("keyring: decryption failed")
)

const (
	keySize     = 32
	versionSize = 2
	nonceSize   = 12
	tagSize     = 16
	// Overhead is how many bytes Seal adds to the plaintext.
	Overhead = versionSize + nonceSize + tagSize

	fileName    = "keyring"
	maxFileSize = 1 << 20
)

type key struct {
	version uint16
	aead    cipher.AEAD
	// derive is a subkey for Derive, so raw key material is not kept beside the cipher.
	derive []byte
}

// Keyring holds keys ordered by version: the highest encrypts, any of them decrypts. It is
// immutable after construction and safe for concurrent use.
type Keyring struct {
	keys []key // ascending by version
}

// Parse builds a Keyring from entries "v<N>:<standard base64 of 32 bytes>", N in 1..65535 and
// unique. Error messages name the entry by position and never echo its content.
func Parse(entries []string) (*Keyring, error) {
	k, err := parse(entries)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	return k, nil
}

func parse(entries []string) (*Keyring, error) {
	if len(entries) == 0 {
		return nil, errors.New("no keys")
	}
	k := &Keyring{keys: make([]key, 0, len(entries))}
	raws := make(map[string]uint16, len(entries))
	for i, e := range entries {
		v, raw, err := parseEntry(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if slices.ContainsFunc(k.keys, func(x key) bool { return x.version == v }) {
			return nil, fmt.Errorf("entry %d: duplicate version v%d", i+1, v)
		}
		// The same key under two versions is almost certainly a botched rotation (old key pasted
		// as the new one), which would silently leave data under a key meant to be retired.
		if prev, ok := raws[string(raw)]; ok {
			return nil, fmt.Errorf("entry %d: v%d reuses the key of v%d", i+1, v, prev)
		}
		raws[string(raw)] = v
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		// Random-nonce GCM rather than NewGCM with our own nonce: it is the mode allowed in
		// FIPS 140-3 "only" mode, and its output (nonce || ciphertext || tag) is our format anyway.
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		derive, err := hkdf.Key(sha256.New, raw, nil, "ony keyring derive v1", 32)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		k.keys = append(k.keys, key{version: v, aead: aead, derive: derive})
	}
	slices.SortFunc(k.keys, func(a, b key) int { return cmp.Compare(a.version, b.version) })
	return k, nil
}

func parseEntry(e string) (uint16, []byte, error) {
	ver, enc, ok := strings.Cut(e, ":")
	if !ok {
		return 0, nil, errors.New(`want "v<N>:<base64 key>"`)
	}
	digits, ok := strings.CutPrefix(ver, "v")
	if !ok || digits == "" || len(digits) > 5 || digits[0] == '0' {
		return 0, nil, errors.New("version must be v1..v65535")
	}
	n := 0
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, nil, errors.New("version must be v1..v65535")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, nil, errors.New("version must be v1..v65535")
	}
	// The message names the version only: any part of enc may be key material.
	raw, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || len(enc) != base64.StdEncoding.EncodedLen(keySize) || len(raw) != keySize {
		return 0, nil, fmt.Errorf("v%d: key must be standard base64 of exactly %d bytes", n, keySize)
	}
	return uint16(n), raw, nil
}

// Generate returns a new entry "v1:<base64 of 32 random bytes>"; change the version when adding it
// to an existing keyring.
func Generate() (string, error) {
	raw := make([]byte, keySize)
	rand.Read(raw) // never fails; crashes the program instead (Go ≥ 1.24)
	return "v1:" + base64.StdEncoding.EncodeToString(raw), nil
}

// errEmpty guards the zero Keyring, which holds no key; Parse and LoadOrCreate never return one.
var errEmpty = errors.New("keyring: no keys (use Parse or LoadOrCreate)")

// CurrentVersion is the version new ciphertexts are sealed under (0 for a zero Keyring).
func (k *Keyring) CurrentVersion() uint16 {
	if len(k.keys) == 0 {
		return 0
	}
	return k.keys[len(k.keys)-1].version
}

// Seal encrypts plaintext under the current key: version (2 bytes, big-endian) || 12-byte random
// nonce || ciphertext+tag. aad must identify the row the result is stored in (for example
// "handoff.payload|<org id>|<handoff id>") so that it cannot be replayed into another row; the
// same aad is needed to Open. Each key must seal fewer than 2^32 messages (random nonces): rotate well before.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	if len(k.keys) == 0 {
		return nil, errEmpty
	}
	cur := k.keys[len(k.keys)-1]
	out := make([]byte, versionSize, versionSize+nonceSize+len(plaintext)+tagSize)
	binary.BigEndian.PutUint16(out, cur.version)
	return cur.aead.Seal(out, nil, plaintext, aad), nil
}

// Open decrypts the output of Seal given the same aad. It returns ErrUnknownKey if the version is
// not in the keyring and ErrDecrypt for anything else that fails.
func (k *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, fmt.Errorf("%w: input too short", ErrDecrypt)
	}
	v := binary.BigEndian.Uint16(ciphertext)
	i, ok := slices.BinarySearchFunc(k.keys, v, func(x key, v uint16) int { return cmp.Compare(x.version, v) })
	if !ok {
		return nil, fmt.Errorf("%w: v%d", ErrUnknownKey, v)
	}
	pt, err := k.keys[i].aead.Open(nil, nil, ciphertext[versionSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// LoadOrCreate returns Parse(entries) when entries is non-empty. Otherwise it reads "<dir>/keyring"
// (one entry per line; blank lines and lines starting with '#' are ignored), creating it with a
// fresh v1 key if missing. A key file readable or writable by group or others is refused.
func LoadOrCreate(dir string, entries []string) (*Keyring, error) {
	if len(entries) > 0 {
		return Parse(entries)
	}
	path := filepath.Join(dir, fileName)
	k, err := load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	return create(dir, path)
}

func load(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the file checked is the file read.
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: %s is not a regular file", path)
	}
	// Windows does not map ACLs to these bits, so the check would only ever misfire there.
	if perm := st.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyring: %s has mode %04o, which lets group or others access the keys; fix with: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keyring: read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("keyring: %s is larger than %d bytes", path, maxFileSize)
	}
	k, err := parse(fileEntries(data))
	if err != nil {
		return nil, fmt.Errorf("keyring: %s: %w", path, err)
	}
	return k, nil
}

func fileEntries(data []byte) []string {
	var entries []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxFileSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		entries = append(entries, line)
	}
	return entries
}

func create(dir, path string) (*Keyring, error) {
	entry, err := Generate()
	if err != nil {
		return nil, err
	}
	k, err := Parse([]string{entry})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".keyring-*") // created 0600
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful link it is just the spare name
	content := "# Ony encryption keys. Losing this file loses the data encrypted under it; back it up.\n" +
		"# To rotate, add a line v<N+1>:<base64 of 32 random bytes> (openssl rand -base64 32) and keep\n" +
		"# the old lines, so data sealed under them still opens.\n" +
		entry + "\n"
	_, err = tmp.WriteString(content)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: write %s: %w", tmp.Name(), err)
	}
	// Link, unlike rename, never replaces an existing file: if another process created the keyring
	// in the meantime, it may already have encrypted data under its key, so we must adopt that key
	// rather than overwrite it with ours.
	err = os.Link(tmp.Name(), path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return load(path)
	case err != nil:
		// Filesystems without hard links: fall back to rename, still atomic for readers.
		// Re-reading narrows, but cannot close, the window in which a concurrent creator's key wins.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return nil, fmt.Errorf("keyring: create %s: %w", path, err)
		}
		syncDir(dir)
		return load(path)
	}
	syncDir(dir)
	return k, nil
}

// syncDir makes the new directory entry durable. Best effort: some platforms cannot fsync a
// directory, and the file's own contents are already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Derive returns a 32-byte key for purpose and context (e.g. "redact fingerprint", an org id), from
// the oldest key in the ring: derived keys stay stable across a rotation until that key is retired.
func (k *Keyring) Derive(purpose, context string) []byte {
	if k == nil || len(k.keys) == 0 {
		return nil
	}
	out, err := hkdf.Key(sha256.New, k.keys[0].derive, []byte(purpose), context, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce; 32 always works
	}
	return out
}
