package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a log's size and root under its origin: the body of a C2SP tlog-checkpoint.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Body is the checkpoint text that gets signed.
func (c Checkpoint) Body() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint reads a checkpoint body (extension lines after the root are allowed and ignored).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, errors.New("audit: checkpoint: want origin, size and root lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, errors.New("audit: checkpoint: bad size")
	}
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, errors.New("audit: checkpoint: bad root hash")
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// OpenCheckpoint verifies a signed checkpoint note against the given verifier keys and parses it.
// Signatures by unknown keys are ignored (key rotation); at least one known key must have signed.
func OpenCheckpoint(signed []byte, vkeys []string) (Checkpoint, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("audit: verifier key: %w", err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

// Keys are the instance's checkpoint signing keys. The first signs; all sign during a rotation.
type Keys struct {
	Signers []note.Signer
	// Verifiers are the public keys, in note's text form ("name+hash+base64").
	Verifiers []string
}

// KeyFile is the signing key file in the data directory.
const KeyFile = "audit-signing.key"

// ErrNoKeyFile is LoadKeys finding neither configured keys nor a key file.
var ErrNoKeyFile = errors.New("audit: no signing key file")

// LoadOrCreateKeys takes signing keys from configuration (note "PRIVATE+KEY+…" strings) or from the key
// file in dir, generating one named name on first start. Keys are never stored in the database.
func LoadOrCreateKeys(dir, name string, configured []string) (*Keys, error) {
	return loadKeys(dir, name, configured, true)
}

// LoadKeys is LoadOrCreateKeys for commands that work on an existing instance: without configured
// keys and a key file it returns ErrNoKeyFile and creates nothing, since a new key would sign
// checkpoints that the instance's published key does not verify.
func LoadKeys(dir string, configured []string) (*Keys, error) {
	return loadKeys(dir, "", configured, false)
}

func loadKeys(dir, name string, configured []string, create bool) (*Keys, error) {
	if len(configured) == 0 {
		path := filepath.Join(dir, KeyFile)
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && !create:
			return nil, fmt.Errorf("%w: %s does not exist", ErrNoKeyFile, path)
		case errors.Is(err, os.ErrNotExist):
			skey, _, err := note.GenerateKey(rand.Reader, name)
			if err != nil {
				return nil, err
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
			if err := writeNew(path, []byte(skey+"\n")); err != nil {
				return nil, fmt.Errorf("audit: create %s: %w", path, err)
			}
			if data, err = os.ReadFile(path); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, fmt.Errorf("audit: read %s: %w", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("audit: %s is readable by others; chmod 600 it", path)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				configured = append(configured, l)
			}
		}
	}
	k := &Keys{}
	for i, s := range configured {
		signer, err := note.NewSigner(strings.TrimSpace(s))
		if err != nil {
			// The error from note could quote the key; say which entry instead.
			return nil, fmt.Errorf("audit: signing key %d is not a valid note signing key", i+1)
		}
		vkey, err := verifierKey(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		k.Signers = append(k.Signers, signer)
		k.Verifiers = append(k.Verifiers, vkey)
	}
	if len(k.Signers) == 0 {
		return nil, errors.New("audit: no signing key")
	}
	return k, nil
}

// writeNew creates path exclusively, so two processes starting at once cannot both write a key.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// verifierKey derives the public "name+hash+base64" key from a "PRIVATE+KEY+name+hash+base64" one.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("audit: malformed signing key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", errors.New("audit: malformed signing key")
	}
	priv := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], priv)
}

// Sign signs the checkpoint with every key.
func (k *Keys) Sign(c Checkpoint) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.Body()}, k.Signers...)
}

// SameCheckpoint reports whether two signed notes commit to the same checkpoint body.
func SameCheckpoint(a, b []byte) bool {
	ia, ib := bytes.Index(a, []byte("\n\n")), bytes.Index(b, []byte("\n\n"))
	return ia > 0 && ia == ib && bytes.Equal(a[:ia], b[:ib])
}
