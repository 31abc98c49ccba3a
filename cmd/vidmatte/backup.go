package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"vidmatte"
)

func init() {
	register(command{
		name:    "backup",
		summary: "write a consistent copy of the SQLite store, while the daemon runs",
		run:     runBackup,
	})
}

const backupUsage = `usage: vidmatte backup [--data DIR | --config FILE] OUT

Writes a consistent, compacted copy of the daemon's SQLite database
(DIR/vidmatte.db) to OUT with SQLite's VACUUM INTO. The daemon may keep
running: the copy is one snapshot, and writers are not held up. OUT must not
exist; it is written under a temporary name, checked, synced and renamed,
readable by its owner only (it holds webhook secrets).

To restore: stop the daemon, move OUT to DIR/vidmatte.db (removing any
vidmatte.db-wal and vidmatte.db-shm beside it), start the daemon.

A PostgreSQL store (--store postgres://…) is backed up with PostgreSQL's own
tools: pg_dump --format=custom, restored with pg_restore.
`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stderr)
	cf := bindConfigFlags(fs, false)
	fs.Usage = func() {
		fmt.Fprint(stderr, backupUsage)
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("one output file is needed, got %d", len(pos))
	}
	cfg, err := cf.load(os.Getenv)
	if err != nil {
		return err
	}
	if s := cfg.Store; s != "" && s != "sqlite" {
		return errors.New("the store is PostgreSQL: vidmatte backup copies SQLite stores only; back it up with PostgreSQL's tools, e.g. pg_dump --format=custom --file=vidmatte.dump '" + redactURL(s) + "', and restore with pg_restore")
	}
	path := filepath.Join(cfg.Data, "vidmatte.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no database at %s (is --data the daemon's data dir?): %w", path, err)
	}
	db, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	if db.Backend() == "postgres" {
		return errors.New("the store is PostgreSQL: back it up with pg_dump")
	}
	out := pos[0]
	if err := db.Backup(ctx, out); err != nil {
		if vidmatte.ErrorCode(err) == vidmatte.CodeConflict {
			return fmt.Errorf("%s exists: choose a new file (a backup never overwrites one)", out)
		}
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: backup of %s, %d bytes\n", out, db.Path(), st.Size())
	return nil
}

// redactURL drops the password of a database URL.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + "@" + rest[at+1:]
}
