package store

import (
	"context"
	"database/sql"
	"errors"

	"vidmatte"
)

var _ vidmatte.SegmentService = (*DB)(nil)

// RecordSegment records a finished segment of a processing job held with
// lease l, and moves the job's frames_done up to the frames of all its
// segments, in one transaction. A lease that is not the job's current one
// is a conflict wrapping ErrLeaseLost and records nothing; so is a job
// that is not processing. Segments come in order: s.Seq must equal the
// number already recorded (a second record of the same segment, or one
// that skips ahead, is CodeConflict).
func (db *DB) RecordSegment(ctx context.Context, l vidmatte.Lease, s vidmatte.Segment) error {
	switch {
	case s.Seq < 0:
		return vidmatte.FieldErrorf("seq", "must not be negative")
	case s.Frames <= 0:
		return vidmatte.FieldErrorf("frames", "a segment holds at least one frame")
	case s.Path == "":
		return vidmatte.FieldErrorf("path", "is required")
	case s.Size < 0:
		return vidmatte.FieldErrorf("size", "must not be negative")
	}
	last := 0
	if s.Last {
		last = 1
	}
	return db.write(ctx, "record segment", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", l.JobID)
		if err != nil {
			return err
		}
		if r.LeaseToken != l.Token {
			return errLeaseLost(l.JobID)
		}
		if r.Status != vidmatte.StatusProcessing {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a processing job records segments", l.JobID, r.Status)
		}
		var n int
		var frames int64
		var ended int
		if err := tx.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(frames), 0), coalesce(max(last), 0) FROM job_segments WHERE job_id = ?", l.JobID).Scan(&n, &frames, &ended); err != nil {
			return dbError(err, "record segment")
		}
		if ended != 0 {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s: its last segment is recorded already", l.JobID)
		}
		if s.Seq != n {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s has %d segments recorded; segment %d is out of order", l.JobID, n, s.Seq)
		}
		now := nanos(db.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO job_segments
(job_id, seq, first_pts, next_pts, frames, last, part_path, part_size, lease_token, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.JobID, s.Seq, s.FirstPTS, s.NextPTS, s.Frames, last, s.Path, s.Size, l.Token, now); err != nil {
			return dbError(err, "record segment")
		}
		_, err = tx.ExecContext(ctx, "UPDATE jobs SET frames_done = greatest(frames_done, ?), updated_at = ? WHERE id = ?", frames+s.Frames, now, l.JobID)
		return dbError(err, "record segment")
	})
}

// JobSegments returns a job's recorded segments in order; an unknown job
// is CodeNotFound.
func (db *DB) JobSegments(ctx context.Context, jobID string) ([]vidmatte.Segment, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err, "read segments")
	}
	defer tx.Rollback()
	if _, err := findJob(ctx, tx, "", jobID); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, first_pts, next_pts, frames, last, part_path, part_size, lease_token
FROM job_segments WHERE job_id = ? ORDER BY seq`, jobID)
	if err != nil {
		return nil, dbError(err, "read segments")
	}
	defer rows.Close()
	out := []vidmatte.Segment{}
	for rows.Next() {
		s := vidmatte.Segment{JobID: jobID}
		var last int
		if err := rows.Scan(&s.Seq, &s.FirstPTS, &s.NextPTS, &s.Frames, &last, &s.Path, &s.Size, &s.LeaseToken); err != nil {
			return nil, dbError(err, "read segments")
		}
		s.Last = last != 0
		out = append(out, s)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, dbError(err, "read segments")
	}
	return out, nil
}

// EndedJobsWithSegments lists up to limit jobs that have ended
// (completed, failed or canceled) and still have segments recorded: their
// parts are to be deleted, then their records dropped (DropSegments).
func (db *DB) EndedJobsWithSegments(ctx context.Context, limit int) ([]string, error) {
	if limit < 1 || limit > maxClaim {
		return nil, vidmatte.FieldErrorf("limit", "must be between 1 and %d", maxClaim)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT s.job_id FROM job_segments s JOIN jobs j ON j.id = s.job_id
WHERE j.status IN ('completed', 'failed', 'canceled') ORDER BY s.job_id LIMIT ?`, limit)
	if err != nil {
		return nil, dbError(err, "list ended jobs' segments")
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, dbError(err, "list ended jobs' segments")
		}
		ids = append(ids, id)
	}
	return ids, dbError(rows.Err(), "list ended jobs' segments")
}

// DropSegments forgets the segments of a job that has ended (its parts
// deleted); a job that may still resume is CodeConflict.
func (db *DB) DropSegments(ctx context.Context, jobID string) error {
	return db.write(ctx, "drop segments", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", jobID)
		if err != nil {
			return err
		}
		if !r.Status.Terminal() {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s: its segments are still needed", jobID, r.Status)
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM job_segments WHERE job_id = ?", jobID)
		return dbError(err, "drop segments")
	})
}
