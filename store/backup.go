package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"

	"vidmatte"
)

// Backup writes a consistent copy of the SQLite database to path, while
// the daemon keeps running: SQLite's VACUUM INTO reads one snapshot of the
// database (WAL lets writers go on meanwhile) into a new, compacted file.
// The copy is written beside path under a temporary name, checked with
// PRAGMA integrity_check, synced, and renamed into place, so path is
// either absent or a whole, valid database; it is readable by its owner
// only, as the database is (it holds webhook secrets). An existing path is
// a conflict, never overwritten.
//
// A PostgreSQL store is not backed up here: the database is the cluster's
// and is dumped with PostgreSQL's own tools (pg_dump); Backup says so with
// an invalid error.
func (db *DB) Backup(ctx context.Context, path string) error {
	if db.d == postgresDialect {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "store: this store is PostgreSQL (%s): back it up with PostgreSQL's tools, e.g. pg_dump --format=custom --file=vidmatte.dump DBNAME, and restore with pg_restore", db.path)
	}
	if path == "" {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "store: backup: no output path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInvalid, "store: backup path")
	}
	if abs == db.path {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "store: backup: %s is the database itself", abs)
	}
	if _, err := os.Lstat(abs); err == nil {
		return vidmatte.Errorf(vidmatte.CodeConflict, "store: backup: %s exists; choose a new file", abs)
	} else if !errors.Is(err, os.ErrNotExist) {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: "+abs)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: create "+dir)
	}
	// VACUUM INTO wants a file that does not exist or is empty: reserve a
	// name with the owner-only mode, empty.
	tmpf, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".*.tmp")
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: create a temporary file in "+dir)
	}
	tmp := tmpf.Name()
	tmpf.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := db.vacuumInto(ctx, tmp); err != nil {
		return err
	}
	if err := checkBackup(ctx, tmp); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: sync")
	}
	if err := os.Link(tmp, abs); err != nil { // fails, not overwrites, if path appeared meanwhile
		if errors.Is(err, os.ErrExist) {
			return vidmatte.Errorf(vidmatte.CodeConflict, "store: backup: %s exists; choose a new file", abs)
		}
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: move into place")
	}
	os.Remove(tmp)
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// vacuumInto runs VACUUM INTO on a connection of its own: the readers'
// are query-only, which VACUUM INTO refuses, and the writer's would hold
// the write lock for the whole copy. VACUUM INTO reads the source in one
// read transaction, so writers go on beside it.
func (db *DB) vacuumInto(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite3", "file:"+escapeURIPath(db.path)+"?_busy_timeout=10000")
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: open database")
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return dbError(err, "backup")
	}
	return nil
}

// checkBackup opens a written copy read-only and runs integrity_check.
func checkBackup(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite3", "file:"+escapeURIPath(path)+"?mode=ro")
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: backup: open the copy")
	}
	defer c.Close()
	var res string
	if err := c.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return dbError(err, "backup: check the copy")
	}
	if res != "ok" {
		return vidmatte.Errorf(vidmatte.CodeInternal, "store: backup: the copy fails its integrity check: %s", res)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
