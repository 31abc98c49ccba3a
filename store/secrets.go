package store

import (
	"context"
	"crypto/rand"

	"vidmatte"
)

// Secret returns the secret of the name that every daemon sharing the
// store uses (the key that signs output URLs, so that a URL one daemon
// signed is honoured by all): size random bytes, made by the first daemon
// that asks and kept from then on.
func (db *DB) Secret(ctx context.Context, name string, size int) ([]byte, error) {
	if name == "" || size < 16 {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "store: a secret needs a name and at least 16 bytes")
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInternal, "store: make a secret")
	}
	var value []byte
	err := db.write(ctx, "read secret", func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
			name, fresh, nanos(db.now())); err != nil {
			return dbError(err, "make secret")
		}
		return dbError(tx.QueryRowContext(ctx, "SELECT value FROM secrets WHERE name = ?", name).Scan(&value), "read secret")
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}
