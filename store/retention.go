package store

import (
	"context"
	"database/sql"
	"time"

	"vidmatte"
)

// SetQuotas sets the per-key quotas that CreateUpload, CreateJob and
// StartJob enforce inside their transactions (zero fields: no quota). Call
// it before the store is shared.
func (db *DB) SetQuotas(q vidmatte.Quotas) { db.quotas = q }

// KeyHoldings returns what a key holds against its quotas.
func (db *DB) KeyHoldings(ctx context.Context, keyID string) (*vidmatte.KeyHoldings, error) {
	return keyHoldings(ctx, db.r, keyID)
}

func keyHoldings(ctx context.Context, q queryer, keyID string) (*vidmatte.KeyHoldings, error) {
	var h vidmatte.KeyHoldings
	err := q.QueryRowContext(ctx, `SELECT
	CAST((SELECT coalesce(sum(size), 0) FROM uploads WHERE key_id = ?1 AND expired_at IS NULL) +
	(SELECT coalesce(sum(output_size), 0) FROM jobs WHERE key_id = ?1 AND status = 'completed' AND output_expired_at IS NULL) AS BIGINT),
	(SELECT count(*) FROM jobs WHERE key_id = ?1 AND status IN ('queued', 'processing')),
	(SELECT count(*) FROM jobs WHERE key_id = ?1 AND status = 'pending')`, keyID).Scan(&h.StoredBytes, &h.QueuedJobs, &h.Drafts)
	if err != nil {
		return nil, dbError(err, "read key holdings")
	}
	return &h, nil
}

// checkStoredBytes refuses adding bytes to what the key stores past its
// quota.
func (db *DB) checkStoredBytes(ctx context.Context, tx *txn, keyID string, adding int64) error {
	if db.quotas.StoredBytes <= 0 {
		return nil
	}
	h, err := keyHoldings(ctx, tx, keyID)
	if err != nil {
		return err
	}
	if h.StoredBytes+adding > db.quotas.StoredBytes {
		return vidmatte.QuotaStoredBytesError(h.StoredBytes, adding, db.quotas.StoredBytes)
	}
	return nil
}

// checkJobCounts refuses one more queued job (queued) or draft (!queued)
// past the key's quota.
func (db *DB) checkJobCounts(ctx context.Context, tx *txn, keyID string, queued bool) error {
	if (queued && db.quotas.QueuedJobs <= 0) || (!queued && db.quotas.Drafts <= 0) {
		return nil
	}
	h, err := keyHoldings(ctx, tx, keyID)
	if err != nil {
		return err
	}
	if queued && h.QueuedJobs >= db.quotas.QueuedJobs {
		return vidmatte.QuotaCountError("queued_jobs", h.QueuedJobs, db.quotas.QueuedJobs)
	}
	if !queued && h.Drafts >= db.quotas.Drafts {
		return vidmatte.QuotaCountError("drafts", h.Drafts, db.quotas.Drafts)
	}
	return nil
}

// DeleteUpload removes the record of an upload of the key that no job
// refers to (the creation it was made for was refused). An upload a job
// refers to is CodeConflict; a missing one CodeNotFound.
func (db *DB) DeleteUpload(ctx context.Context, keyID, id string) error {
	return db.write(ctx, "delete upload", func(tx *txn) error {
		var refs int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM jobs WHERE upload_id = ?", id).Scan(&refs); err != nil {
			return dbError(err, "delete upload")
		}
		if refs > 0 {
			return vidmatte.Errorf(vidmatte.CodeConflict, "upload %s is used by %d jobs", id, refs)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM uploads WHERE id = ? AND key_id = ?", id, keyID)
		if err != nil {
			return dbError(err, "delete upload")
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return vidmatte.Errorf(vidmatte.CodeNotFound, "no upload %q", id)
		}
		return nil
	})
}

// ExpireUploads marks expired, and returns, up to limit uploads created
// before before (fetched ones: before fetchedBefore) that no pending,
// queued or processing job refers to. Their files are the caller's to
// delete; from now on FindUpload and CreateJob do not see them.
func (db *DB) ExpireUploads(ctx context.Context, before, fetchedBefore time.Time, limit int) ([]*vidmatte.Upload, error) {
	var out []*vidmatte.Upload
	err := db.write(ctx, "expire uploads", func(tx *txn) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE uploads SET expired_at = ?
WHERE id IN (SELECT u.id FROM uploads u
	WHERE u.expired_at IS NULL AND u.created_at < (CASE WHEN u.fetched THEN ? ELSE ? END)
	AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.upload_id = u.id AND j.status IN ('pending', 'queued', 'processing'))
	ORDER BY u.created_at LIMIT ?)
RETURNING `+uploadColumns, nanos(db.now()), nanos(fetchedBefore), nanos(before), limit)
		if err != nil {
			return dbError(err, "expire uploads")
		}
		defer rows.Close()
		for rows.Next() {
			u, err := scanUpload(rows)
			if err != nil {
				return dbError(err, "expire uploads")
			}
			out = append(out, u)
		}
		return dbError(rows.Err(), "expire uploads")
	})
	return out, err
}

// ExpireOutputs marks expired, and returns, up to limit outputs of jobs
// completed before before. The job keeps its record and ledger rows; its
// output URL is no longer given, and the files are the caller's to delete.
func (db *DB) ExpireOutputs(ctx context.Context, before time.Time, limit int) ([]vidmatte.ExpiredOutput, error) {
	var out []vidmatte.ExpiredOutput
	err := db.write(ctx, "expire outputs", func(tx *txn) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `UPDATE jobs SET output_expired_at = ?1, updated_at = ?1
WHERE id IN (SELECT id FROM jobs WHERE status = 'completed' AND output_expired_at IS NULL AND completed_at < ?2
	ORDER BY completed_at LIMIT ?3)
RETURNING id, output_path`, nanos(db.now()), nanos(before), limit)
		if err != nil {
			return dbError(err, "expire outputs")
		}
		defer rows.Close()
		for rows.Next() {
			var e vidmatte.ExpiredOutput
			if err := rows.Scan(&e.JobID, &e.Path); err != nil {
				return dbError(err, "expire outputs")
			}
			out = append(out, e)
		}
		return dbError(rows.Err(), "expire outputs")
	})
	return out, err
}

// UploadPathLive reports whether a live (not expired) upload's file is at
// path, so that a sweep of the uploads folder keeps it.
func (db *DB) UploadPathLive(ctx context.Context, path string) (bool, error) {
	var n int
	err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM uploads WHERE path = ? AND expired_at IS NULL", path).Scan(&n)
	if err != nil {
		return false, dbError(err, "find upload path")
	}
	return n > 0, nil
}

// OutputLive reports whether jobID's output is still kept: the job is not
// terminal-and-expired (a folder of a queued or processing job, or of a
// completed job whose output has not expired, is live).
func (db *DB) OutputLive(ctx context.Context, jobID string) (bool, error) {
	var status string
	var expired sql.NullInt64
	err := db.r.QueryRowContext(ctx, "SELECT status, output_expired_at FROM jobs WHERE id = ?", jobID).Scan(&status, &expired)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, dbError(err, "find job output")
	}
	switch vidmatte.Status(status) {
	case vidmatte.StatusCompleted:
		return !expired.Valid, nil
	case vidmatte.StatusQueued, vidmatte.StatusProcessing, vidmatte.StatusPending:
		return true, nil
	}
	return false, nil
}
