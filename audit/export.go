package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ony-ai/ony/store"
)

// ExportFormat names the export's layout.
const ExportFormat = "ony-audit-export/v1"

// Export is everything needed to verify a log with no database: the leaves' exact bytes, a signed
// checkpoint covering them, the public keys, and an unsigned directory naming the actors (outside the
// hashed bytes, so a member can be anonymised without breaking the log).
type Export struct {
	Format     string            `json:"format"`
	Origin     string            `json:"origin"`
	Keys       []string          `json:"keys"`
	Checkpoint string            `json:"checkpoint"`
	Leaves     [][]byte          `json:"leaves"`
	Members    map[string]Member `json:"members,omitempty"`
}

// Member is one directory entry.
type Member struct {
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// ErrUnknownOrg reports an export of an id that is neither an organization nor a log.
var ErrUnknownOrg = errors.New("audit: no such organization")

// Export writes orgID's log as JSON to w: an organization's, the instance's (store.InstanceLogID), or
// a log its organization left behind. Any other id is ErrUnknownOrg, before anything is signed: a
// signed empty log for a mistyped id would read as evidence that the organization never did anything.
func (l *Log) Export(ctx context.Context, s store.Store, orgID string, w io.Writer) error {
	if _, err := l.Sequence(ctx, s, orgID); err != nil {
		return err
	}
	if orgID != store.InstanceLogID {
		err := s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
			if _, err := tx.Org(ctx); !errors.Is(err, store.ErrNotFound) {
				return err
			}
			_, err := tx.AuditHead(ctx)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: %s", ErrUnknownOrg, orgID)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	cp, err := l.Checkpoint(ctx, s, orgID)
	if err != nil {
		return err
	}
	c, err := OpenCheckpoint(cp, l.keys.Verifiers)
	if err != nil {
		return err
	}
	ex := Export{Format: ExportFormat, Origin: l.Origin(orgID), Keys: l.keys.Verifiers, Checkpoint: string(cp), Members: map[string]Member{}}
	err = s.InOrg(ctx, orgID, func(tx store.OrgTx) error {
		for next := int64(0); next < c.Size; {
			leaves, err := tx.AuditLeaves(ctx, next, 5000)
			if err != nil {
				return err
			}
			if len(leaves) == 0 {
				return fmt.Errorf("audit: export: leaf %d missing", next)
			}
			for _, lf := range leaves {
				if lf.Index >= c.Size {
					break
				}
				ex.Leaves = append(ex.Leaves, lf.Data)
				next = lf.Index + 1
			}
		}
		if orgID == store.InstanceLogID {
			return nil
		}
		users, err := tx.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			ex.Members[u.ID] = Member{Kind: "user", Name: u.Name, Email: u.Email}
		}
		return nil
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(ex)
}

// VerifyExport checks an export with no database: the checkpoint is signed by one of vkeys (the
// verifier's own copy, never the keys inside the export), the leaves hash to its root, and, when an
// older checkpoint the verifier kept is given, that checkpoint is a prefix of this one.
func VerifyExport(data []byte, vkeys []string, older []byte) (Report, error) {
	var ex Export
	if err := json.Unmarshal(data, &ex); err != nil {
		return Report{}, fmt.Errorf("audit: export is not valid JSON: %w", err)
	}
	if ex.Format != ExportFormat {
		return Report{}, fmt.Errorf("audit: unknown export format %q", ex.Format)
	}
	if len(vkeys) == 0 {
		return Report{}, errors.New("audit: a verifier key is required")
	}
	c, err := OpenCheckpoint([]byte(ex.Checkpoint), vkeys)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Origin: c.Origin, BadIndex: -1, CheckpointSize: c.Size}
	if older != nil {
		// Until the check below runs to its end.
		rep.Consistency = ConsistencyNotChecked
	}
	if ex.Origin != c.Origin {
		return rep.fail(-1, "export origin %q differs from its checkpoint's %q", ex.Origin, c.Origin), nil
	}
	if int64(len(ex.Leaves)) != c.Size {
		return rep.fail(min(int64(len(ex.Leaves)), c.Size), "checkpoint covers %d leaves, export has %d", c.Size, len(ex.Leaves)), nil
	}
	var t tree
	for i, lf := range ex.Leaves {
		if _, err := t.add(int64(i), lf); err != nil {
			return rep, err
		}
	}
	rep.Size = c.Size
	if err := t.checkCheckpoint(c, c.Origin, c.Size); err != nil {
		// The root is only known for the whole tree; find the first leaf that differs is impossible
		// without the stored hashes, so the report says the set does not match.
		return rep.fail(-1, "leaves do not match the signed checkpoint: %v", err), nil
	}
	root, _ := t.root(c.Size)
	rep.Root = rootB64(root[:])
	if older != nil {
		o, err := OpenCheckpoint(older, vkeys)
		if err != nil {
			return rep.fail(-1, "older checkpoint: %v", err), nil
		}
		if o.Origin != c.Origin {
			return rep.fail(-1, "older checkpoint is for %q, not %q", o.Origin, c.Origin), nil
		}
		rep.OlderSize, rep.Consistency = o.Size, ConsistencyFailed
		if o.Size > c.Size {
			return rep.fail(-1, "older checkpoint has %d leaves, more than today's %d: the log was truncated", o.Size, c.Size), nil
		}
		if o.Size > 0 {
			proof, err := tlog.ProveTree(c.Size, o.Size, t.hashes)
			if err != nil {
				return rep, err
			}
			if err := tlog.CheckTree(proof, c.Size, c.Root, o.Size, o.Root); err != nil {
				return rep.fail(-1, "older checkpoint is not a prefix of today's log: history was rewritten"), nil
			}
		}
		rep.Consistency = ConsistencyOK
	}
	return rep, nil
}
