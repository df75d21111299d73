// Command example verifies an Ony audit export the way a third party would: with the Go standard
// library and golang.org/x/mod/sumdb/note only, no Ony code. docs/audit.md describes the file.
//
//	go run github.com/ony-ai/ony/audit/example EXPORT.json VERIFIER_KEY [OLDER_CHECKPOINT]
//
// It checks the checkpoint's signature with the key given (never a key inside the file), recomputes the
// RFC 6962 Merkle root from the leaves and compares it with the signed root; given a checkpoint kept
// from earlier, it checks that today's log still begins with exactly the leaves that one signed.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 && len(args) != 3 {
		fmt.Fprintln(stderr, "usage: example EXPORT.json VERIFIER_KEY [OLDER_CHECKPOINT]")
		return 2
	}
	var older []byte
	data, err := os.ReadFile(args[0])
	if err == nil && len(args) == 3 {
		older, err = os.ReadFile(args[2])
	}
	var n int
	if err == nil {
		n, err = verify(data, args[1], older)
	}
	if err != nil {
		fmt.Fprintln(stderr, "FAIL:", err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %d leaves\n", n)
	return 0
}

// export is the part of the file a verifier needs.
type export struct {
	Format     string   `json:"format"`     // "ony-audit-export/v1"
	Origin     string   `json:"origin"`     // "<instance>/orgs/<org id>" or "<instance>/instance"
	Checkpoint string   `json:"checkpoint"` // a signed note: origin, size, base64 root
	Leaves     [][]byte `json:"leaves"`     // base64 strings in the file (null when empty)
}

// verify checks an export, and that an older checkpoint (if not nil) is a prefix of it; it returns the
// number of leaves.
func verify(data []byte, vkey string, older []byte) (int, error) {
	var ex export
	if err := json.Unmarshal(data, &ex); err != nil {
		return 0, err
	}
	if ex.Format != "ony-audit-export/v1" {
		return 0, fmt.Errorf("unknown format %q", ex.Format)
	}
	size, root, err := openCheckpoint([]byte(ex.Checkpoint), vkey, ex.Origin)
	if err != nil {
		return 0, err
	}
	if size != len(ex.Leaves) {
		return 0, fmt.Errorf("the checkpoint covers %d leaves, the file has %d", size, len(ex.Leaves))
	}
	if got := treeHash(ex.Leaves); !bytes.Equal(got[:], root) {
		return 0, errors.New("the leaves do not hash to the signed root")
	}
	if older != nil {
		// With every leaf at hand, the consistency check is a recomputation: the first m leaves of
		// today's log must hash to the root signed when the log had m.
		m, oldRoot, err := openCheckpoint(older, vkey, ex.Origin)
		if err != nil {
			return 0, fmt.Errorf("older checkpoint: %w", err)
		}
		if m > size {
			return 0, fmt.Errorf("the older checkpoint has %d leaves, today's log %d: it was cut", m, size)
		}
		if got := treeHash(ex.Leaves[:m]); !bytes.Equal(got[:], oldRoot) {
			return 0, fmt.Errorf("today's log does not begin with the %d leaves the older checkpoint signed", m)
		}
	}
	return size, nil
}

// openCheckpoint checks a signed checkpoint against vkey and origin, and returns its size and root.
func openCheckpoint(signed []byte, vkey, origin string) (int, []byte, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return 0, nil, err
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return 0, nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	// The signed text is three lines: origin, tree size, base64 root (further lines are extensions).
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != origin {
		return 0, nil, fmt.Errorf("the checkpoint is not for %q", origin)
	}
	size, err := strconv.Atoi(lines[1])
	if err != nil || size < 0 {
		return 0, nil, fmt.Errorf("bad checkpoint size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != sha256.Size {
		return 0, nil, fmt.Errorf("bad checkpoint root %q", lines[2])
	}
	return size, root, nil
}

// treeHash is the RFC 6962 Merkle tree hash (section 2.1) of leaves, the same as tlog.TreeHash.
func treeHash(leaves [][]byte) [sha256.Size]byte {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0x00}, leaves[0]...)) // a leaf: 0x00 ‖ its bytes
	}
	k := 1 // the largest power of two smaller than len(leaves)
	for k*2 < len(leaves) {
		k *= 2
	}
	left, right := treeHash(leaves[:k]), treeHash(leaves[k:])
	return sha256.Sum256(append(append([]byte{0x01}, left[:]...), right[:]...)) // a node: 0x01 ‖ left ‖ right
}
