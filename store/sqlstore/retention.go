package sqlstore

// Payload retention (issue 17): scrubbing the sealed payload off old, final handoffs.

import (
	"context"
	"fmt"
	"time"
)

func (t *orgTx) ScrubPayloads(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("store: scrub limit %d", limit)
	}
	res, err := t.exec(ctx, "ScrubPayloads", t.org, t.org, utc(before), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *orgTx) CountScrubbablePayloads(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := t.tx.QueryRowContext(ctx, t.s.query("CountScrubbablePayloads"), t.org, utc(before)).Scan(&n)
	return n, t.s.mapErr(err)
}
