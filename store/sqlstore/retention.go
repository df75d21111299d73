package sqlstore

// Payload retention (issue 17): scrubbing the sealed payload off old, final handoffs.

import (
	"context"
	"fmt"
	"strings"
	"time"
)

func (t *orgTx) ScrubPayloads(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 || limit > 1000 {
		return 0, fmt.Errorf("store: scrub limit %d is not 1..1000", limit)
	}
	rows, err := t.tx.QueryContext(ctx, t.s.query("ScrubbablePayloads"), t.org, utc(before), limit)
	if err != nil {
		return 0, t.s.mapErr(err)
	}
	args := []any{t.org}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, t.s.mapErr(err)
		}
		args = append(args, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, t.s.mapErr(err)
	}
	if len(args) == 1 {
		return 0, nil
	}
	res, err := t.tx.ExecContext(ctx, t.s.queryWith("ScrubPayloads", strings.Repeat(", ?", len(args)-2)+")"), args...)
	if err != nil {
		return 0, t.s.mapErr(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *orgTx) CountScrubbablePayloads(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, t.s.query("CountScrubbablePayloads"), t.org, utc(before)).Scan(&n)
	return n, t.s.mapErr(err)
}
