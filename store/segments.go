package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sort"

	"vidmatte"
)

var _ vidmatte.SegmentService = (*DB)(nil)

// Segment states in job_segments.
const (
	segRunning = "running"
	segDone    = "done"
)

// helpCandidates bounds the processing jobs ClaimHelp weighs.
const helpCandidates = 50

// PlanSegments records the segment plan of a processing job held with
// lease l, or returns the plan recorded by an earlier claim.
func (db *DB) PlanSegments(ctx context.Context, l vidmatte.Lease, p vidmatte.SegmentPlan) (vidmatte.SegmentPlan, error) {
	if err := p.Validate(); err != nil {
		return vidmatte.SegmentPlan{}, err
	}
	out := p
	err := db.write(ctx, "plan segments", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", l.JobID)
		if err != nil {
			return err
		}
		if r.LeaseToken != l.Token {
			return errLeaseLost(l.JobID)
		}
		if r.Status != vidmatte.StatusProcessing {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a processing job is planned", l.JobID, r.Status)
		}
		have, err := readPlan(ctx, tx, l.JobID)
		if err != nil || have != nil {
			if have != nil {
				out = *have
			}
			return err
		}
		out = p
		_, err = tx.ExecContext(ctx, `INSERT INTO job_segment_plans (job_id, origin_pts, length_ticks, count, created_at)
VALUES (?, ?, ?, ?, ?)`, l.JobID, p.Origin, p.Length, p.Count, nanos(db.now()))
		return dbError(err, "plan segments")
	})
	return out, err
}

func readPlan(ctx context.Context, q queryer, jobID string) (*vidmatte.SegmentPlan, error) {
	var p vidmatte.SegmentPlan
	err := q.QueryRowContext(ctx, "SELECT origin_pts, length_ticks, count FROM job_segment_plans WHERE job_id = ?", jobID).
		Scan(&p.Origin, &p.Length, &p.Count)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbError(err, "read a segment plan")
	}
	return &p, nil
}

// segRow is a row of job_segments.
type segRow struct {
	seq        int
	state      string
	worker     string
	token      int64
	leaseUntil int64
	seg        vidmatte.Segment
}

func readSegments(ctx context.Context, q queryer, jobID, lock string) ([]segRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, state, worker, token, lease_until, first_pts, frames, part_path, part_size
FROM job_segments WHERE job_id = ? ORDER BY seq`+lock, jobID)
	if err != nil {
		return nil, dbError(err, "read segments")
	}
	defer rows.Close()
	var out []segRow
	for rows.Next() {
		r := segRow{seg: vidmatte.Segment{JobID: jobID}}
		if err := rows.Scan(&r.seq, &r.state, &r.worker, &r.token, &r.leaseUntil, &r.seg.FirstPTS, &r.seg.Frames, &r.seg.Path, &r.seg.Size); err != nil {
			return nil, dbError(err, "read segments")
		}
		r.seg.Seq, r.seg.Token = r.seq, r.token
		out = append(out, r)
	}
	return out, dbError(rows.Err(), "read segments")
}

// statuses is what each segment of plan is doing at now.
func statuses(p *vidmatte.SegmentPlan, rows []segRow, now int64) []vidmatte.SegmentStatus {
	st := make([]vidmatte.SegmentStatus, p.Count)
	for _, r := range rows {
		if r.seq < 0 || r.seq >= p.Count {
			continue
		}
		switch {
		case r.state == segDone:
			st[r.seq] = vidmatte.SegmentDone
		case r.leaseUntil >= now:
			st[r.seq] = vidmatte.SegmentRunning
		}
	}
	return st
}

// ClaimSegment claims segment seq (or, when seq < 0, the one PickSegment
// chooses) of a processing job for worker.
func (db *DB) ClaimSegment(ctx context.Context, worker, jobID string, seq int) (vidmatte.SegmentLease, bool, error) {
	if worker == "" {
		return vidmatte.SegmentLease{}, false, vidmatte.FieldErrorf("worker", "is required")
	}
	var l vidmatte.SegmentLease
	var ok bool
	err := db.write(ctx, "claim a segment", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", jobID)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s: its segments are not wanted", jobID, r.Status)
		}
		if r.Status != vidmatte.StatusProcessing {
			ok = false
			return nil
		}
		l, ok, err = db.claimSegment(ctx, tx, worker, jobID, seq)
		return err
	})
	return l, ok, err
}

// claimSegment claims a segment of a job the transaction has locked.
func (db *DB) claimSegment(ctx context.Context, tx *txn, worker, jobID string, seq int) (vidmatte.SegmentLease, bool, error) {
	p, err := readPlan(ctx, tx, jobID)
	if err != nil {
		return vidmatte.SegmentLease{}, false, err
	}
	if p == nil {
		return vidmatte.SegmentLease{}, false, vidmatte.Errorf(vidmatte.CodeConflict, "job %s has no segment plan", jobID)
	}
	now, err := db.clock(ctx, tx)
	if err != nil {
		return vidmatte.SegmentLease{}, false, err
	}
	rows, err := readSegments(ctx, tx, jobID, "")
	if err != nil {
		return vidmatte.SegmentLease{}, false, err
	}
	st := statuses(p, rows, now)
	if seq < 0 {
		var ok bool
		if seq, ok = vidmatte.PickSegment(st); !ok {
			return vidmatte.SegmentLease{}, false, nil
		}
	} else if seq >= p.Count || st[seq] != vidmatte.SegmentFree {
		return vidmatte.SegmentLease{}, false, nil
	}
	until := now + int64(db.leaseLength())
	token := int64(1)
	i := sort.Search(len(rows), func(i int) bool { return rows[i].seq >= seq })
	if i < len(rows) && rows[i].seq == seq {
		token = rows[i].token + 1
		_, err = tx.ExecContext(ctx, `UPDATE job_segments SET state = ?, worker = ?, token = ?, lease_until = ?, updated_at = ?
WHERE job_id = ? AND seq = ?`, segRunning, worker, token, until, nanos(db.now()), jobID, seq)
	} else {
		_, err = tx.ExecContext(ctx, `INSERT INTO job_segments (job_id, seq, state, worker, token, lease_until, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, jobID, seq, segRunning, worker, token, until, nanos(db.now()))
	}
	if err != nil {
		return vidmatte.SegmentLease{}, false, dbError(err, "claim a segment")
	}
	return vidmatte.SegmentLease{JobID: jobID, Seq: seq, Token: token}, true, nil
}

// ClaimHelp claims the segment PickSegment chooses in the processing job
// that gains the most from another worker: the one whose longest stretch
// of unclaimed segments is longest (the oldest first on a tie).
func (db *DB) ClaimHelp(ctx context.Context, worker string, own bool) (*vidmatte.Job, vidmatte.SegmentLease, bool, error) {
	if worker == "" {
		return nil, vidmatte.SegmentLease{}, false, vidmatte.FieldErrorf("worker", "is required")
	}
	var j *vidmatte.Job
	var l vidmatte.SegmentLease
	var ok bool
	err := db.write(ctx, "claim help", func(tx *txn) error {
		j, ok = nil, false
		mine := ""
		if own {
			mine = worker
		}
		rows, err := tx.QueryContext(ctx, `SELECT j.id FROM jobs j JOIN job_segment_plans p ON p.job_id = j.id
WHERE j.status = 'processing' AND (?1 = '' OR j.worker = ?1) ORDER BY j.started_at, j.id LIMIT ?2`, mine, helpCandidates)
		if err != nil {
			return dbError(err, "claim help")
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return dbError(err, "claim help")
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError(err, "claim help")
		}
		now, err := db.clock(ctx, tx)
		if err != nil {
			return err
		}
		best, most := "", 0
		for _, id := range ids {
			p, err := readPlan(ctx, tx, id)
			if err != nil || p == nil {
				return err
			}
			segs, err := readSegments(ctx, tx, id, "")
			if err != nil {
				return err
			}
			if g := helpGain(statuses(p, segs, now)); g > most {
				best, most = id, g
			}
		}
		if best == "" {
			return nil
		}
		// Locked, then picked again: a helper that raced this one for the
		// job has committed its claim by now.
		r, err := lockJob(ctx, tx, "", best)
		if err != nil {
			return err
		}
		if r.Status != vidmatte.StatusProcessing || own && r.worker != worker {
			return nil
		}
		if l, ok, err = db.claimSegment(ctx, tx, worker, best, -1); err != nil || !ok {
			return err
		}
		j = r.job()
		return nil
	})
	if err != nil {
		return nil, vidmatte.SegmentLease{}, false, err
	}
	return j, l, ok, nil
}

// helpGain is how many segments a helper would take from the ones
// PickSegment chooses among: the length of the stretch it would get. A
// job none of whose segments is claimed or recorded has none to give: its
// runner is about to start it.
func helpGain(st []vidmatte.SegmentStatus) int {
	if !slices.ContainsFunc(st, func(s vidmatte.SegmentStatus) bool { return s != vidmatte.SegmentFree }) {
		return 0
	}
	seq, ok := vidmatte.PickSegment(st)
	if !ok {
		return 0
	}
	n := 0
	for i := seq; i < len(st) && st[i] == vidmatte.SegmentFree; i++ {
		n++
	}
	return n
}

// RenewSegments renews the segment leases worker still holds and returns
// the ones it lost (taken back after they ran out, or their job ended).
func (db *DB) RenewSegments(ctx context.Context, worker string, leases []vidmatte.SegmentLease) ([]vidmatte.SegmentLease, error) {
	var lost []vidmatte.SegmentLease
	if len(leases) == 0 {
		return lost, nil
	}
	err := db.write(ctx, "renew segment leases", func(tx *txn) error {
		lost = lost[:0]
		until, err := db.leaseUntil(ctx, tx)
		if err != nil {
			return err
		}
		for _, l := range leases {
			res, err := tx.ExecContext(ctx, `UPDATE job_segments SET lease_until = ?
WHERE job_id = ? AND seq = ? AND token = ? AND worker = ? AND state = ?
AND job_id IN (SELECT id FROM jobs WHERE status IN ('queued', 'processing'))`, until, l.JobID, l.Seq, l.Token, worker, segRunning)
			if err != nil {
				return dbError(err, "renew segment leases")
			}
			if n, err := res.RowsAffected(); err != nil {
				return dbError(err, "renew segment leases")
			} else if n == 0 {
				lost = append(lost, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// ReleaseSegments ends the segment leases worker still holds, so that
// another worker may claim those segments at once.
func (db *DB) ReleaseSegments(ctx context.Context, worker string, leases []vidmatte.SegmentLease) error {
	if len(leases) == 0 {
		return nil
	}
	return db.write(ctx, "release segment leases", func(tx *txn) error {
		for _, l := range leases {
			if _, err := tx.ExecContext(ctx, `UPDATE job_segments SET lease_until = 0
WHERE job_id = ? AND seq = ? AND token = ? AND worker = ? AND state = ?`, l.JobID, l.Seq, l.Token, worker, segRunning); err != nil {
				return dbError(err, "release segment leases")
			}
		}
		return nil
	})
}

func errSegmentLeaseLost(l vidmatte.SegmentLease) error {
	return &vidmatte.Error{Code: vidmatte.CodeConflict, Err: vidmatte.ErrLeaseLost,
		Message: "job " + l.JobID + ": the claim of this segment is no longer this worker's (it ran out and the segment was taken back)"}
}

// RecordSegment records a claimed segment finished, and moves the job's
// frames_done up to the frames of all its recorded segments, in one
// transaction.
func (db *DB) RecordSegment(ctx context.Context, l vidmatte.SegmentLease, s vidmatte.Segment) error {
	switch {
	case s.Frames < 0:
		return vidmatte.FieldErrorf("frames", "must not be negative")
	case s.Frames > 0 && s.Path == "":
		return vidmatte.FieldErrorf("path", "is required for a segment with frames")
	case s.Frames == 0 && s.Path != "":
		return vidmatte.FieldErrorf("path", "a segment without frames has no part")
	case s.Size < 0:
		return vidmatte.FieldErrorf("size", "must not be negative")
	}
	return db.write(ctx, "record segment", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", l.JobID)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; its segments are not wanted", l.JobID, r.Status)
		}
		var state string
		var token int64
		err = tx.QueryRowContext(ctx, "SELECT state, token FROM job_segments WHERE job_id = ? AND seq = ? FOR_UPDATE", l.JobID, l.Seq).Scan(&state, &token)
		if errors.Is(err, sql.ErrNoRows) || err == nil && (state != segRunning || token != l.Token) {
			return errSegmentLeaseLost(l)
		}
		if err != nil {
			return dbError(err, "record segment")
		}
		now := nanos(db.now())
		if _, err := tx.ExecContext(ctx, `UPDATE job_segments SET state = ?, first_pts = ?, frames = ?, part_path = ?, part_size = ?, updated_at = ?
WHERE job_id = ? AND seq = ?`, segDone, s.FirstPTS, s.Frames, s.Path, s.Size, now, l.JobID, l.Seq); err != nil {
			return dbError(err, "record segment")
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET updated_at = ?2, frames_done = greatest(frames_done,
	(SELECT coalesce(sum(frames), 0) FROM job_segments WHERE job_id = ?1 AND state = 'done')) WHERE id = ?1`, l.JobID, now)
		return dbError(err, "record segment")
	})
}

// JobSegments says where a job's segments stand; an unknown job is
// CodeNotFound.
func (db *DB) JobSegments(ctx context.Context, jobID string) (vidmatte.JobSegments, error) {
	out := vidmatte.JobSegments{Done: []vidmatte.Segment{}}
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return out, dbError(err, "read segments")
	}
	defer tx.Rollback()
	if _, err := findJob(ctx, tx, "", jobID); err != nil {
		return out, err
	}
	if out.Plan, err = readPlan(ctx, tx, jobID); err != nil {
		return out, err
	}
	rows, err := readSegments(ctx, tx, jobID, "")
	if err != nil {
		return out, err
	}
	now, err := db.clock(ctx, tx)
	if err != nil {
		return out, err
	}
	for _, r := range rows {
		switch {
		case r.state == segDone:
			out.Done = append(out.Done, r.seg)
		case r.leaseUntil >= now:
			out.Running++
		}
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
	rows, err := db.r.QueryContext(ctx, `SELECT p.job_id FROM job_segment_plans p JOIN jobs j ON j.id = p.job_id
WHERE j.status IN ('completed', 'failed', 'canceled') ORDER BY p.job_id LIMIT ?`, limit)
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

// DropSegments forgets the segments and the plan of a job that has ended
// (its parts deleted); a job that may still resume is CodeConflict.
func (db *DB) DropSegments(ctx context.Context, jobID string) error {
	return db.write(ctx, "drop segments", func(tx *txn) error {
		r, err := lockJob(ctx, tx, "", jobID)
		if err != nil {
			return err
		}
		if !r.Status.Terminal() {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s: its segments are still needed", jobID, r.Status)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM job_segments WHERE job_id = ?", jobID); err != nil {
			return dbError(err, "drop segments")
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM job_segment_plans WHERE job_id = ?", jobID)
		return dbError(err, "drop segments")
	})
}
