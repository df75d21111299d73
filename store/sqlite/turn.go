package sqlite

import (
	"context"
	"database/sql/driver"
)

// The job runner's pool. River writes through database/sql on its own, outside the store's
// transactions, so its writes would meet the store's at SQLite's lock, where a writer that finds it
// taken sleeps and looks again (busy_timeout: 1, 2, 5, 10 … 100 ms). Its connections instead wait for
// the store's write turn before each transaction and each statement outside one, and give it back
// when that ends: every writer of the process queues in the process.

// turnFunc waits for the write turn and returns its release.
type turnFunc func(context.Context) (release func(), err error)

// turnConnector opens caching connections that take the turn before they write.
type turnConnector struct {
	connector
	turn turnFunc
}

func (c turnConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &turnConn{cachingConn: conn.(*cachingConn), turn: c.turn}, nil
}

// turnConn is used by one goroutine at a time (database/sql's contract). River runs its queries
// with ExecContext and QueryContext, which take the turn; a statement prepared on the connection
// would not.
type turnConn struct {
	*cachingConn
	turn turnFunc
	// release gives the turn back; set while a transaction holds it.
	release func()
}

func (c *turnConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	release, err := c.turn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.cachingConn.BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	c.release = release
	return turnTx{Tx: tx, c: c}, nil
}

//nolint:staticcheck // required by driver.Conn
func (c *turnConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *turnConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.release != nil {
		return c.cachingConn.ExecContext(ctx, query, args)
	}
	release, err := c.turn(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return c.cachingConn.ExecContext(ctx, query, args)
}

// QueryContext outside a transaction holds the turn until its rows are closed: a statement such as
// UPDATE … RETURNING writes as its rows are read and commits when they are closed.
func (c *turnConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.release != nil {
		return c.cachingConn.QueryContext(ctx, query, args)
	}
	release, err := c.turn(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.cachingConn.QueryContext(ctx, query, args)
	if err != nil {
		release()
		return nil, err
	}
	return &turnRows{Rows: rows, release: release}, nil
}

type turnTx struct {
	driver.Tx
	c *turnConn
}

func (t turnTx) Commit() error {
	defer t.c.end()
	return t.Tx.Commit()
}

func (t turnTx) Rollback() error {
	defer t.c.end()
	return t.Tx.Rollback()
}

func (c *turnConn) end() {
	if c.release != nil {
		c.release()
		c.release = nil
	}
}

type turnRows struct {
	driver.Rows
	release func()
}

func (r *turnRows) Close() error {
	err := r.Rows.Close()
	if r.release != nil {
		r.release()
		r.release = nil
	}
	return err
}

// Close gives back a turn a transaction still held, should database/sql drop the connection without
// ending it.
func (c *turnConn) Close() error {
	c.end()
	return c.cachingConn.Close()
}
