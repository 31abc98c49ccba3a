package store

import (
	"context"
	"database/sql"
	"errors"

	"vidmatte"
)

// CreateUpload records an uploaded video of u.KeyID and fills u.ID
// ("vid_…") and u.CreatedAt. An unknown key is CodeNotFound; past the key's
// stored bytes quota it is the quota's error, with nothing written.
func (db *DB) CreateUpload(ctx context.Context, u *vidmatte.Upload) error {
	switch {
	case u.KeyID == "":
		return vidmatte.FieldErrorf("key_id", "is required")
	case u.Path == "":
		return vidmatte.FieldErrorf("path", "is required")
	case u.Size < 0:
		return vidmatte.FieldErrorf("size", "must not be negative")
	}
	id, now := newID(prefixUpload), db.now()
	err := db.write(ctx, "create upload", func(tx *txn) error {
		if _, err := lockKey(ctx, tx, u.KeyID); err != nil {
			return err
		}
		if err := db.checkStoredBytes(ctx, tx, u.KeyID, u.Size); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO uploads (id, key_id, filename, path, size, duration_sec, width, height, fps, has_audio, fetched, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, u.KeyID, u.Filename, u.Path, u.Size, u.DurationSec, u.Width, u.Height, u.FPS, u.HasAudio, u.Fetched, nanos(now))
		if err != nil {
			return dbError(err, "create upload")
		}
		return markIdempotent(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	u.ID, u.CreatedAt = id, now
	return nil
}

// FindUpload returns an upload of the key; another key's upload is
// CodeNotFound, like a missing one.
func (db *DB) FindUpload(ctx context.Context, keyID, id string) (*vidmatte.Upload, error) {
	return findUpload(ctx, db.r, keyID, id)
}

const uploadColumns = "id, key_id, filename, path, size, duration_sec, width, height, fps, has_audio, fetched, created_at"

func scanUpload(row interface{ Scan(...any) error }) (*vidmatte.Upload, error) {
	var (
		u       vidmatte.Upload
		created int64
	)
	if err := row.Scan(&u.ID, &u.KeyID, &u.Filename, &u.Path, &u.Size, &u.DurationSec, &u.Width, &u.Height, &u.FPS,
		&u.HasAudio, &u.Fetched, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromNanos(created)
	return &u, nil
}

// findUpload reads a live upload of the key: an expired one is not found.
func findUpload(ctx context.Context, q queryer, keyID, id string) (*vidmatte.Upload, error) {
	u, err := scanUpload(q.QueryRowContext(ctx, "SELECT "+uploadColumns+
		" FROM uploads WHERE id = ? AND key_id = ? AND expired_at IS NULL", id, keyID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "no upload %q", id)
	}
	if err != nil {
		return nil, dbError(err, "find upload")
	}
	return u, nil
}
