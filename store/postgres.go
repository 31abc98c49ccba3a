package store

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"vidmatte"
)

// Advisory lock keys of the store on PostgreSQL (transaction-scoped).
const (
	advisoryMigrate = 0x76696d01 // schema changes
	advisoryClaim   = 0x76696d02 // claiming queued jobs
)

// idleInTransaction is how long PostgreSQL lets a session of the store sit
// idle inside an open transaction before it ends the session, releasing
// its row and advisory locks. Every transaction of the store runs its
// statements back to back, so only a daemon that froze mid-transaction
// (SIGSTOP, a stalled VM, a partitioned network) reaches it; without it,
// a frozen daemon holding the row of the job it runs would block every
// other daemon's rescue of that job, and one frozen inside a claim would
// stop all claims, until it woke. A URL that sets
// idle_in_transaction_session_timeout itself keeps its own value.
var idleInTransaction = 10 * time.Second

// OpenPostgres opens the store on a PostgreSQL database (a postgres://
// URL, as pgx reads it) and brings its schema up to date, under an
// advisory lock so that daemons starting together migrate once. Every
// daemon of a cluster opens the same database: writes are transactions
// that lock the rows they change (SELECT … FOR UPDATE), claims serialise on
// an advisory lock, and a transaction that loses a serialisation race or a
// deadlock is retried.
func OpenPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInvalid, "store: PostgreSQL URL")
	}
	const idle = "idle_in_transaction_session_timeout"
	if _, set := cfg.RuntimeParams[idle]; !set && !strings.Contains(cfg.RuntimeParams["options"], idle) {
		cfg.RuntimeParams[idle] = strconv.FormatInt(idleInTransaction.Milliseconds(), 10)
	}
	pool := stdlib.OpenDB(*cfg)
	pool.SetMaxOpenConns(16)
	pool.SetMaxIdleConns(8)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	c := &conn{DB: pool, d: postgresDialect}
	db := &DB{path: redactURL(dsn), d: postgresDialect, w: c, r: c, now: func() time.Time { return time.Now().UTC().Round(0) }}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := pool.PingContext(ctx); err != nil {
		pool.Close()
		return nil, vidmatte.Wrap(err, vidmatte.CodeUnavailable, "store: PostgreSQL at "+db.path+" does not answer")
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// redactURL drops the password of a database URL, for logs and health.
func redactURL(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres"
	}
	return u.Redacted()
}

// pgRetryable reports a PostgreSQL error after which the whole
// transaction may simply run again: a serialisation failure or a
// deadlock.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// pgCanceled reports a statement PostgreSQL canceled (the context ended).
func pgCanceled(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57014"
}
