package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"vidmatte"
)

// maxIdempotencyKey bounds the length of a client's Idempotency-Key.
const maxIdempotencyKey = 255

const idempotencyColumns = "key_id, key, method, path, body_hash, done, status, content_type, body, created_at, lease_until, resource_id"

func scanIdempotency(row interface{ Scan(...any) error }) (*vidmatte.IdempotencyRecord, error) {
	var (
		r       vidmatte.IdempotencyRecord
		created int64
		lease   int64
	)
	if err := row.Scan(&r.KeyID, &r.Key, &r.Method, &r.Path, &r.BodyHash, &r.Done, &r.Status, &r.ContentType, &r.Body, &created, &lease, &r.Resource); err != nil {
		return nil, err
	}
	r.CreatedAt = fromNanos(created)
	if lease != 0 {
		r.LeaseUntil = fromNanos(lease)
	}
	return &r, nil
}

// BeginIdempotent claims (rec.KeyID, rec.Key) for a request, storing rec's
// method, path and body hash as not done, with rec.CreatedAt (now when
// zero; the caller's clock otherwise, the one it purges by). When a
// record exists already (done or still in progress) it is returned with
// claimed false and nothing changes: comparing its method, path and body
// hash with the new request's is the caller's part. An existing claim that
// is not done, whose lease (rec.LeaseUntil when it was taken) has run out
// and whose method, path and body hash are rec's, is taken over: its
// request died without an answer, and rec's claim (with rec's lease)
// replaces it; rec.Resource is then what the dead request had changed, if
// anything. An unknown key is CodeNotFound.
func (db *DB) BeginIdempotent(ctx context.Context, rec *vidmatte.IdempotencyRecord) (*vidmatte.IdempotencyRecord, bool, error) {
	switch {
	case rec.KeyID == "":
		return nil, false, vidmatte.FieldErrorf("key_id", "is required")
	case rec.Key == "" || len(rec.Key) > maxIdempotencyKey:
		return nil, false, vidmatte.FieldErrorf("Idempotency-Key", "must be 1 to %d characters", maxIdempotencyKey)
	}
	var (
		existing *vidmatte.IdempotencyRecord
		claimed  bool
	)
	now := rec.CreatedAt
	if now.IsZero() {
		now = db.now()
	}
	now = fromNanos(nanos(now))
	err := db.write(ctx, "begin idempotent request", func(tx *txn) error {
		if _, err := lockKey(ctx, tx, rec.KeyID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency (key_id, key, method, path, body_hash, done, created_at, lease_until)
VALUES (?, ?, ?, ?, ?, FALSE, ?, ?) ON CONFLICT (key_id, key) DO NOTHING`, rec.KeyID, rec.Key, rec.Method, rec.Path, rec.BodyHash, nanos(now), leaseNanos(rec.LeaseUntil))
		if err != nil {
			return dbError(err, "begin idempotent request")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			claimed = true
			return nil
		}
		existing, err = scanIdempotency(tx.QueryRowContext(ctx, "SELECT "+idempotencyColumns+" FROM idempotency WHERE key_id = ? AND key = ?", rec.KeyID, rec.Key))
		if err != nil {
			return dbError(err, "read idempotency record")
		}
		if existing.Done || existing.LeaseUntil.IsZero() || existing.LeaseUntil.After(now) ||
			existing.Method != rec.Method || existing.Path != rec.Path || existing.BodyHash != rec.BodyHash {
			return nil
		}
		// The claim's request died: take it over.
		res, err = tx.ExecContext(ctx, `UPDATE idempotency SET created_at = ?, lease_until = ?
WHERE key_id = ? AND key = ? AND done = FALSE AND lease_until = ?`, nanos(now), leaseNanos(rec.LeaseUntil), rec.KeyID, rec.Key, nanos(existing.LeaseUntil))
		if err != nil {
			return dbError(err, "take over idempotency claim")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rec.Resource = existing.Resource
			claimed, existing = true, nil
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if claimed {
		if existing != nil || rec.Resource == "" {
			rec.Resource = ""
		}
		rec.Done, rec.Status, rec.ContentType, rec.Body = false, 0, "", nil
		rec.CreatedAt = now
	}
	return existing, claimed, nil
}

// FinishIdempotent stores the response (Status, ContentType, Body) of a
// record this caller claimed and marks it done. A missing claim is
// CodeNotFound; a record already done is CodeConflict.
func (db *DB) FinishIdempotent(ctx context.Context, rec *vidmatte.IdempotencyRecord) error {
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	return db.write(ctx, "finish idempotent request", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency SET done = TRUE, status = ?, content_type = ?, body = ?
WHERE key_id = ? AND key = ? AND done = FALSE`, rec.Status, rec.ContentType, body, rec.KeyID, rec.Key)
		if err != nil {
			return dbError(err, "finish idempotent request")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			rec.Done = true
			return nil
		}
		return idempotencyState(ctx, tx, rec.KeyID, rec.Key)
	})
}

// AbandonIdempotent drops a claim whose request failed before it had a
// response to keep, so a retry may run. A claim whose request made its
// change already (it has a Resource) is kept with its lease run out, so
// that a retry takes it over at once and answers with the resource. A
// missing claim is no error; a record already done is CodeConflict and
// stays.
func (db *DB) AbandonIdempotent(ctx context.Context, keyID, key string) error {
	return db.write(ctx, "abandon idempotent request", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency SET lease_until = ?
WHERE key_id = ? AND key = ? AND done = FALSE AND resource_id != ''`, nanos(db.now()), keyID, key)
		if err != nil {
			return dbError(err, "abandon idempotent request")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		res, err = tx.ExecContext(ctx, "DELETE FROM idempotency WHERE key_id = ? AND key = ? AND done = FALSE", keyID, key)
		if err != nil {
			return dbError(err, "abandon idempotent request")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if err := idempotencyState(ctx, tx, keyID, key); vidmatte.ErrorCode(err) != vidmatte.CodeNotFound {
			return err
		}
		return nil
	})
}

// idempotencyState explains why a claim could not be updated: it is gone
// (CodeNotFound) or done already (CodeConflict).
func idempotencyState(ctx context.Context, tx *txn, keyID, key string) error {
	var done bool
	err := tx.QueryRowContext(ctx, "SELECT done FROM idempotency WHERE key_id = ? AND key = ?", keyID, key).Scan(&done)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return vidmatte.Errorf(vidmatte.CodeNotFound, "no idempotency record %q", key)
	case err != nil:
		return dbError(err, "read idempotency record")
	case done:
		return vidmatte.Errorf(vidmatte.CodeConflict, "idempotency record %q is already done", key)
	}
	return vidmatte.Errorf(vidmatte.CodeConflict, "idempotency record %q changed meanwhile", key)
}

// PurgeIdempotent removes the records created before the time, done or
// not (a claim left by a crashed request goes too), and returns how many.
// Keeping them 24 hours is the caller's schedule.
func (db *DB) PurgeIdempotent(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.write(ctx, "purge idempotency records", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM idempotency WHERE created_at < ?", nanos(before))
		if err != nil {
			return dbError(err, "purge idempotency records")
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// leaseNanos stores a lease; zero is no lease.
func leaseNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return nanos(t)
}

// markIdempotent records resourceID in the idempotency claim ctx carries,
// inside the transaction of the change that made it.
func markIdempotent(ctx context.Context, tx *txn, resourceID string) error {
	keyID, key, ok := vidmatte.IdempotencyClaimFrom(ctx)
	if !ok {
		return nil
	}
	_, err := tx.ExecContext(ctx, "UPDATE idempotency SET resource_id = ? WHERE key_id = ? AND key = ? AND done = FALSE", resourceID, keyID, key)
	return dbError(err, "record the idempotent change")
}
