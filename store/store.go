// Package store owns the daemon's state: API keys (hashed), uploads, jobs
// and every transition of their status, the credit ledger, idempotency
// records and webhook deliveries. It implements the domain services of
// package vidmatte (KeyService, UploadService, JobService, UsageService,
// IdempotencyService, WebhookService) and is the only package that imports
// a database driver. One implementation speaks two backends: an SQLite file
// (Open, the embedded default) and a PostgreSQL database shared by a
// cluster of daemons (OpenPostgres). Its queries are written once in the
// common part of both SQLs and rewritten by a small dialect (placeholders,
// row locks, two functions); its tests run on both.
//
// The schema comes from numbered migrations embedded in the binary, one
// folder per dialect with the same versions, applied in transactions and
// recorded in schema_migrations. On SQLite every write goes through a
// single connection in an immediate transaction and reads use a separate
// pool of read-only connections, which WAL lets run beside the writer. On
// PostgreSQL writes lock the rows they change (SELECT … FOR UPDATE),
// claims and migrations serialise on advisory locks, and a transaction that
// loses a serialisation race or a deadlock runs again.
//
// Times are stored as unix nanoseconds (UTC) and come back exactly; credits
// as integer thousandths. Every status change of a job is a job_transitions
// row written in the same transaction, with the request id of the client
// call that caused it (the runner's transitions have none), and every
// credit movement a ledger row written with the balance change it makes.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"vidmatte"
)

// The services the store implements.
var (
	_ vidmatte.KeyService         = (*DB)(nil)
	_ vidmatte.UploadService      = (*DB)(nil)
	_ vidmatte.JobService         = (*DB)(nil)
	_ vidmatte.UsageService       = (*DB)(nil)
	_ vidmatte.IdempotencyService = (*DB)(nil)
	_ vidmatte.WebhookService     = (*DB)(nil)
)

// busyTimeout is how long a connection waits for another process's write
// lock (the CLI granting credits while the daemon runs) before giving up.
const busyTimeout = 10 * time.Second

// DB is the daemon's SQLite database. It is safe for concurrent use.
type DB struct {
	path string
	d    dialect
	w    *conn // SQLite: exactly one connection, every write transaction; PostgreSQL: the pool
	r    *conn // SQLite: read-only connections; PostgreSQL: the same pool
	now  func() time.Time

	quotas vidmatte.Quotas // per key, enforced in the write transactions
	lease  time.Duration   // how long a claim or a heartbeat holds a job
}

// Open opens the database at path, creating the file and its parent
// directory when missing, and brings its schema up to date.
//
// Durability: the database runs in WAL mode with synchronous=FULL. WAL keeps
// readers off the writer's back and, with any synchronous setting, cannot be
// corrupted by a process killed at any moment. NORMAL would fsync the WAL
// only at checkpoints, so after a power cut or kernel crash the last commits
// could vanish even though the caller was told they succeeded; FULL fsyncs
// the WAL at every commit, so a write the store has acknowledged (a credit
// reservation, a charge, a claimed job) is on disk when the call returns.
// Commits cost one fsync each; the writes here are few and small.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: database path")
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: create database directory")
	}
	// The database holds webhook secrets: create it readable by its owner
	// only, before SQLite would create it with the umask's permissions.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: create database file")
	}
	f.Close()

	uri := "file:" + escapeURIPath(abs)
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=on&_synchronous=FULL", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite3", uri+"?"+common+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: open database")
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	db := &DB{path: abs, d: sqliteDialect, w: &conn{DB: w, d: sqliteDialect}, now: func() time.Time { return time.Now().UTC().Round(0) }}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := db.checkWriter(ctx); err != nil {
		w.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}

	r, err := sql.Open("sqlite3", uri+"?"+common+"&_query_only=true")
	if err != nil {
		w.Close()
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: open database")
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db.r = &conn{DB: r, d: sqliteDialect}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkWriter verifies that the writer connection really got the settings
// the durability argument of Open rests on.
func (db *DB) checkWriter(ctx context.Context) error {
	var mode string
	if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: open database "+db.path)
	}
	if !strings.EqualFold(mode, "wal") {
		return vidmatte.Errorf(vidmatte.CodeInternal, "store: database %s is in journal mode %q, not WAL", db.path, mode)
	}
	var sync, fk int
	if err := db.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: read synchronous")
	}
	if err := db.w.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: read foreign_keys")
	}
	if sync != 2 || fk != 1 {
		return vidmatte.Errorf(vidmatte.CodeInternal, "store: database settings not applied (synchronous=%d foreign_keys=%d)", sync, fk)
	}
	return nil
}

// escapeURIPath escapes the characters that end or escape the path part of
// an SQLite URI filename.
func escapeURIPath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(p))
}

// Backend names the database the store runs on: sqlite or postgres.
func (db *DB) Backend() string { return db.d.String() }

// Path is the absolute path of the database file (PostgreSQL: its URL
// without the password).
func (db *DB) Path() string { return db.path }

// Ping checks that both the writer and the readers can reach the database:
// the store's part of the daemon's health.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.w.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return dbError(err, "ping database")
	}
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations").Scan(&one); err != nil {
		return dbError(err, "ping database")
	}
	return nil
}

// Close closes the database. Calls in flight finish first.
func (db *DB) Close() error {
	var errs []error
	if db.r != nil && db.r != db.w {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	if err := errors.Join(errs...); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: close database")
	}
	return nil
}

// write runs fn in one write transaction and commits it when fn returns
// nil; an error from fn is returned as it is, after the rollback. On
// SQLite it is BEGIN IMMEDIATE on the single writer connection; on
// PostgreSQL a transaction of the pool, run again (up to 5 times) when it
// lost a serialisation race or a deadlock, so fn must not keep state from
// a try it made before.
func (db *DB) write(ctx context.Context, what string, fn func(tx *txn) error) error {
	for try := 1; ; try++ {
		err := db.writeOnce(ctx, what, fn)
		if err == nil || db.d != postgresDialect || try == 5 || !pgRetryable(err) {
			return err
		}
	}
}

func (db *DB) writeOnce(ctx context.Context, what string, fn func(tx *txn) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return dbError(err, what)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbError(err, what)
	}
	return nil
}

// dbError wraps an error of the database: a context's end keeps its own
// code (canceled, timeout) so callers can tell it from a fault; anything
// else is internal.
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	var ve *vidmatte.Error
	if errors.As(err, &ve) {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return vidmatte.Wrap(err, vidmatte.CodeCanceled, "store: "+what+": canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return vidmatte.Wrap(err, vidmatte.CodeTimeout, "store: "+what+": timed out")
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrInterrupt || pgCanceled(err) {
		return vidmatte.Wrap(err, vidmatte.CodeCanceled, "store: "+what+": interrupted")
	}
	if pgRetryable(err) {
		return &vidmatte.Error{Code: vidmatte.CodeUnavailable, Message: "store: " + what + ": lost a race with another writer", Err: err}
	}
	return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: "+what)
}

// The times a stored int64 of nanoseconds can hold.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// nanos is how a time is stored: unix nanoseconds, UTC. Times outside
// 1677–2262 are clamped to the ends of that range, so a zero time.Time is
// "before everything".
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNanos reads a stored time back, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullNanos reads a nullable stored time.
func nullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// queryer is what both *sql.DB and *txn offer for reading.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
