package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// Report is what verification found.
type Report struct {
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	Root   string `json:"root"`
	// CheckpointSize is the size the latest checkpoint commits to (0 when none).
	CheckpointSize int64 `json:"checkpoint_size"`
	// BadIndex is the first leaf index at which the log was found wrong, or -1.
	BadIndex int64  `json:"bad_index"`
	Problem  string `json:"problem,omitempty"`
	// OlderSize and Consistency report VerifyExport's check against an older checkpoint, when it was
	// given one: that checkpoint's size, and "ok", "failed" or "not checked" (the export itself did
	// not verify, or the older checkpoint did not open).
	OlderSize   int64  `json:"older_size,omitempty"`
	Consistency string `json:"consistency,omitempty"`
}

// Consistency results.
const (
	ConsistencyOK         = "ok"
	ConsistencyFailed     = "failed"
	ConsistencyNotChecked = "not checked"
)

// OK reports whether nothing was wrong.
func (r Report) OK() bool { return r.Problem == "" }

func (r *Report) fail(index int64, format string, args ...any) Report {
	if r.Size == 0 && index > 0 {
		r.Size = index // the leaves before the first bad one were good
	}
	r.BadIndex, r.Problem = index, fmt.Sprintf(format, args...)
	return *r
}

// memHashes serves tlog from hashes recomputed in memory.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("audit: hash %d not computed", x)
		}
		out[i] = m[x]
	}
	return out, nil
}

// tree recomputes every stored hash from leaves, as an append would have.
type tree struct{ hashes memHashes }

func (t *tree) add(n int64, data []byte) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashes(n, data, t.hashes)
	if err != nil {
		return nil, err
	}
	t.hashes = append(t.hashes, hs...)
	return hs, nil
}

func (t *tree) root(n int64) (tlog.Hash, error) { return tlog.TreeHash(n, t.hashes) }

// Verify recomputes orgID's whole tree from its leaves and checks every stored hash, the head and
// every stored checkpoint (signature, size, root). The report names the first bad leaf index. It checks
// the log against itself only; VerifyOrg also checks it against the organization's records.
func (l *Log) Verify(ctx context.Context, s store.Store, orgID string) (Report, error) {
	return l.verify(ctx, s, orgID, nil)
}

// VerifyOrg does what Verify does, then checks the log against what it records: the organization
// exists (or the log is the instance's), every handoff has its handoff.created leaf and every final one
// the leaf of how it ended, and no leaf names a handoff that does not exist or ended otherwise. A tail
// cut back to an older checkpoint passes Verify; it fails here, naming the handoff whose leaf is gone.
func (l *Log) VerifyOrg(ctx context.Context, s store.Store, orgID string) (Report, error) {
	return l.verify(ctx, s, orgID, &records{})
}

func (l *Log) verify(ctx context.Context, s store.Store, orgID string, x *records) (Report, error) {
	rep := Report{Origin: l.Origin(orgID), BadIndex: -1}
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return rep, err
	}
	const batch = 2000
	var t tree
	var head store.AuditHead
	var cps []store.AuditCheckpoint
	// One snapshot keeps the view consistent while appends continue: the head, the leaves and the
	// handoffs read are those of one moment.
	err := s.ReadOrg(ctx, orgID, func(tx store.OrgTx) error {
		var err error
		if head, err = tx.AuditHead(ctx); errors.Is(err, store.ErrNotFound) {
			// Every organization's log starts with org.created: a missing log was deleted.
			rep.fail(0, "there is no audit log")
			return errStop
		} else if err != nil {
			return err
		}
		// Every checkpoint ever signed, not only the latest: a history rewritten and re-signed since an
		// older checkpoint is caught by that one.
		for from := int64(0); ; {
			batch, err := tx.AuditCheckpoints(ctx, from, 1000)
			if err != nil {
				return err
			}
			cps = append(cps, batch...)
			if len(batch) < 1000 {
				break
			}
			from = batch[len(batch)-1].Size + 1
		}
		if x != nil {
			if orgID != store.InstanceLogID {
				if _, err := tx.Org(ctx); errors.Is(err, store.ErrNotFound) {
					x.orphan = true
				} else if err != nil {
					return err
				}
			}
			if !x.orphan {
				if err := x.load(ctx, tx, head.Size); err != nil {
					return err
				}
			}
		}
		var next int64
		var storedFrom int64
		var stored []tlog.Hash // stored hashes from storedFrom, read ahead in batches
		for {
			leaves, err := tx.AuditLeaves(ctx, next, batch)
			if err != nil {
				return err
			}
			for _, lf := range leaves {
				if lf.Index != next {
					rep.fail(next, "leaf %d is missing", next)
					return errStop
				}
				hs, err := t.add(next, lf.Data)
				if err != nil {
					return err
				}
				start := tlog.StoredHashIndex(0, next)
				for i, h := range hs {
					idx := start + int64(i)
					for idx >= storedFrom+int64(len(stored)) {
						ids, raw, err := tx.AuditStoredHashes(ctx, storedFrom+int64(len(stored)), 4*batch)
						if err != nil {
							return err
						}
						if len(ids) == 0 {
							rep.fail(next, "stored hashes end before leaf %d", next)
							return errStop
						}
						for k, id := range ids {
							if id != storedFrom+int64(len(stored)) || len(raw[k]) != tlog.HashSize {
								rep.fail(next, "stored hash %d is missing or malformed", storedFrom+int64(len(stored)))
								return errStop
							}
							var x tlog.Hash
							copy(x[:], raw[k])
							stored = append(stored, x)
						}
					}
					if stored[idx-storedFrom] != h {
						rep.fail(next, "leaf %d does not match its stored hashes", next)
						return errStop
					}
				}
				if x != nil && !x.orphan {
					x.leaf(next, lf.Data)
				}
				next++
				// Keep memory bounded: drop stored hashes already compared.
				if done := tlog.StoredHashIndex(0, next) - storedFrom; done > 8*batch {
					stored, storedFrom = stored[done:], storedFrom+done
				}
			}
			if len(leaves) < batch {
				break
			}
		}
		rep.Size = next
		return nil
	})
	if errors.Is(err, errStop) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	root, err := t.root(rep.Size)
	if err != nil {
		return rep, err
	}
	rep.Root = rootB64(root[:])
	if head.Size != rep.Size {
		return rep.fail(min(head.Size, rep.Size), "head says %d leaves, the log has %d", head.Size, rep.Size), nil
	}
	if !bytes.Equal(head.Root, root[:]) {
		return rep.fail(rep.Size, "head root does not match the leaves"), nil
	}
	for _, cp := range cps {
		c, err := OpenCheckpoint(cp.Note, l.keys.Verifiers)
		if err != nil {
			return rep.fail(-1, "checkpoint at size %d: %v", cp.Size, err), nil
		}
		if c.Size != cp.Size {
			return rep.fail(-1, "checkpoint stored at size %d commits to %d", cp.Size, c.Size), nil
		}
		if err := t.checkCheckpoint(c, l.Origin(orgID), rep.Size); err != nil {
			return rep.fail(min(c.Size, rep.Size), "checkpoint at size %d: %v", c.Size, err), nil
		}
		rep.CheckpointSize = c.Size
	}
	switch {
	case x == nil:
	case x.orphan:
		return rep.fail(-1, "the log's organization is gone but the log was not erased with it"), nil
	default:
		var latest *store.AuditCheckpoint
		if len(cps) > 0 {
			latest = &cps[len(cps)-1]
		}
		if bad, problem := x.check(rep.Size, latest); problem != "" {
			return rep.fail(bad, "%s", problem), nil
		}
	}
	return rep, nil
}

var errStop = errors.New("stop")

// VerifyAll runs VerifyOrg on every log and every organization, so that an organization without a log,
// or a log left behind by its organization outside the erasure path, shows up as a failure rather than
// as silence. Reports are in log-id order.
func (l *Log) VerifyAll(ctx context.Context, s store.Store) ([]Report, error) {
	var logs, orgs []string
	err := s.InSystem(ctx, func(tx store.SystemTx) (err error) {
		if logs, err = tx.AuditLogIDs(ctx); err != nil {
			return err
		}
		orgs, err = tx.OrgIDs(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Report
	for _, id := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(logs), orgs...)))) {
		rep, err := l.VerifyOrg(ctx, s, id)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", id, err)
		}
		out = append(out, rep)
	}
	return out, nil
}

func (t *tree) checkCheckpoint(c Checkpoint, origin string, size int64) error {
	if c.Origin != origin {
		return fmt.Errorf("origin %q, want %q", c.Origin, origin)
	}
	if c.Size > size {
		return fmt.Errorf("commits to %d leaves but the log has %d", c.Size, size)
	}
	root, err := t.root(c.Size)
	if err != nil {
		return err
	}
	if root != c.Root {
		return fmt.Errorf("root at size %d does not match the leaves", c.Size)
	}
	return nil
}
