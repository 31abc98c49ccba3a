package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"vidmatte"
)

// migrationFiles holds the schema's migrations, one folder per dialect
// (migrations/sqlite, migrations/postgres), named NNNN_what.sql and
// applied in the order of their numbers; a version makes the same change
// in both. A migration, once released, is never edited: a change of schema
// is a new file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads and orders the embedded migrations of a dialect.
func migrations(d dialect) ([]migration, error) {
	dir := path.Join("migrations", d.String())
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		file := e.Name()
		base, ok := strings.CutSuffix(file, ".sql")
		if !ok {
			continue
		}
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("migration %s: name is not NNNN_what.sql", file)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, file, v)
		}
		seen[v] = file
		body, err := migrationFiles.ReadFile(path.Join(dir, file))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the migrations the database has not recorded yet, each
// in its own write transaction together with its schema_migrations row. Two
// processes opening the same database at once serialise on the write lock
// and the second finds the work done.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := migrations(db.d)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInternal, "store: read migrations")
	}
	if err := db.write(ctx, "create schema_migrations", func(tx *txn) error {
		if err := db.lockSchema(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`)
		return dbError(err, "create schema_migrations")
	}); err != nil {
		return err
	}
	var newest sql.NullInt64
	if err := db.w.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&newest); err != nil {
		return dbError(err, "read schema version")
	}
	if len(ms) > 0 && newest.Valid && newest.Int64 > int64(ms[len(ms)-1].version) {
		return vidmatte.Errorf(vidmatte.CodeInternal,
			"store: database %s has schema version %d, newer than this program's %d", db.path, newest.Int64, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		err := db.write(ctx, "apply migration "+m.name, func(tx *txn) error {
			if err := db.lockSchema(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
				return dbError(err, "read schema_migrations")
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return dbError(err, fmt.Sprintf("apply migration %04d_%s", m.version, m.name))
			}
			_, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, nanos(db.now()))
			return dbError(err, "record migration")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lockSchema serialises schema changes of the daemons sharing a database:
// on PostgreSQL a transaction-scoped advisory lock (SQLite's write
// transaction holds the database already).
func (db *DB) lockSchema(ctx context.Context, tx *txn) error {
	if db.d != postgresDialect {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", advisoryMigrate)
	return dbError(err, "lock the schema")
}
