package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"vidmatte"
)

// Transition causes written by the store itself.
const (
	CauseCreated   = "created"
	CauseStarted   = "started"
	CauseClaimed   = "claimed"
	CauseCompleted = "completed"
	CauseRecovered = "recovered after restart"
	// CauseTooManyAttempts fails a job RecoverJobs finds past its attempts.
	CauseTooManyAttempts = "too many attempts"
)

// maxClaim bounds one ClaimJobs call.
const maxClaim = 1000

// jobRow is a job as stored: the domain job plus what only the store sees.
type jobRow struct {
	vidmatte.Job
	milli    int64  // the credits, in thousandths
	worker   string // the runner that holds it while processing
	queuedAt int64  // claim order
	// claimedFrames is frames_done at the last claim; stalled counts the
	// interrupted attempts in a row that did not pass it.
	claimedFrames int64
	stalled       int
}

const jobColumns = `id, key_id, status, progress, video_url, coalesce(upload_id, ''), input_path, output_path,
	error_code, error_message, model, output_format, background, background_image_path, composition,
	webhook_url, metadata, duration_sec, frames_total, frames_done, credits_milli, billing_status,
	attempts, worker, request_id, created_at, coalesce(queued_at, 0), started_at, completed_at, updated_at,
	output_size, output_expired_at, lease_token, lease_until, claimed_frames, stalled_attempts`

func scanJob(row interface{ Scan(...any) error }) (*jobRow, error) {
	var (
		r                              jobRow
		errCode, errMsg                sql.NullString
		background                     string
		composition, metadata          sql.NullString
		created, updated               int64
		started, completed, expired    sql.NullInt64
		leaseUntil                     sql.NullInt64
		status, format, billing, model string
	)
	err := row.Scan(&r.ID, &r.KeyID, &status, &r.Progress, &r.VideoURL, &r.UploadID, &r.InputPath, &r.OutputPath,
		&errCode, &errMsg, &model, &format, &background, &r.Background.ImagePath, &composition,
		&r.WebhookURL, &metadata, &r.DurationSec, &r.FramesTotal, &r.FramesDone, &r.milli, &billing,
		&r.Attempts, &r.worker, &r.RequestID, &created, &r.queuedAt, &started, &completed, &updated,
		&r.OutputSize, &expired, &r.LeaseToken, &leaseUntil, &r.claimedFrames, &r.stalled)
	if err != nil {
		return nil, err
	}
	r.Status = vidmatte.Status(status)
	r.Model = model
	r.OutputFormat = vidmatte.OutputFormat(format)
	r.BillingStatus = vidmatte.BillingStatus(billing)
	r.Credits = fromMilli(r.milli)
	if errCode.Valid {
		r.Error = &vidmatte.JobError{Code: vidmatte.Code(errCode.String), Message: errMsg.String}
	}
	path := r.Background.ImagePath
	if err := json.Unmarshal([]byte(background), &r.Background); err != nil {
		return nil, fmt.Errorf("job %s: background: %w", r.ID, err)
	}
	r.Background.ImagePath = path
	if composition.Valid {
		r.Composition = new(vidmatte.Composition)
		if err := json.Unmarshal([]byte(composition.String), r.Composition); err != nil {
			return nil, fmt.Errorf("job %s: composition: %w", r.ID, err)
		}
	}
	if metadata.Valid {
		if err := json.Unmarshal([]byte(metadata.String), &r.Metadata); err != nil {
			return nil, fmt.Errorf("job %s: metadata: %w", r.ID, err)
		}
	}
	r.CreatedAt = fromNanos(created)
	r.StartedAt = nullNanos(started)
	r.CompletedAt = nullNanos(completed)
	r.UpdatedAt = fromNanos(updated)
	r.OutputExpiredAt = nullNanos(expired)
	r.LeaseUntil = nullNanos(leaseUntil)
	return &r, nil
}

// job returns a copy of the domain job.
func (r *jobRow) job() *vidmatte.Job {
	j := r.Job
	return &j
}

// encodeJSON renders a JSON column; a nil value is NULL.
func encodeJSON(v any, isNil bool) (any, error) {
	if isNil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// checkBackground validates what the store relies on of a background.
func checkBackground(b vidmatte.Background) error {
	switch b.Type {
	case "", vidmatte.BackgroundTransparent, vidmatte.BackgroundColor, vidmatte.BackgroundImage, vidmatte.BackgroundBlur:
		return nil
	}
	return vidmatte.FieldErrorf("background.type", "unknown type %q", b.Type)
}

// checkJob validates a job before it is stored.
func checkJob(j *vidmatte.Job) error {
	switch {
	case j.KeyID == "":
		return vidmatte.FieldErrorf("key_id", "is required")
	case j.VideoURL == "":
		return vidmatte.FieldErrorf("video_url", "is required")
	case j.Model == "":
		return vidmatte.FieldErrorf("model", "is required")
	case !j.OutputFormat.Valid():
		return vidmatte.FieldErrorf("output_format", "unknown format %q", j.OutputFormat)
	case math.IsNaN(j.DurationSec) || math.IsInf(j.DurationSec, 0) || j.DurationSec < 0:
		return vidmatte.FieldErrorf("duration_seconds", "must be a number of seconds, not negative")
	case j.FramesTotal < 0:
		return vidmatte.FieldErrorf("frames_total", "must not be negative")
	case len(j.Metadata) > vidmatte.MaxMetadataPairs:
		return vidmatte.FieldErrorf("metadata", "at most %d pairs", vidmatte.MaxMetadataPairs)
	}
	for k, v := range j.Metadata {
		if k == "" || utf8.RuneCountInString(k) > vidmatte.MaxMetadataKeyLen || utf8.RuneCountInString(v) > vidmatte.MaxMetadataValueLen {
			return vidmatte.FieldErrorf("metadata", "keys are 1 to %d characters, values at most %d",
				vidmatte.MaxMetadataKeyLen, vidmatte.MaxMetadataValueLen)
		}
	}
	return checkBackground(j.Background)
}

// clip bounds a free-text cause to what is worth storing.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// liveKey is CodeUnauthenticated for a revoked key and CodeNotFound for an
// unknown one: credits move only for a live key.
func liveKey(ctx context.Context, tx *txn, id string) error {
	k, err := lockKey(ctx, tx, id)
	if err != nil {
		return err
	}
	if k.RevokedAt != nil {
		return errBadKey()
	}
	return nil
}

// CreateJob stores a new job of j.KeyID and fills in j what the store
// decides: ID ("job_…"), Status, BillingStatus, Credits rounded to
// thousandths, Progress, Attempts and the times. With autoStart it is
// queued and j.Credits are reserved (CodeInsufficientCredits, with the
// balance and the need, and nothing written when the balance is short);
// without, it is a pending draft with nothing reserved. j.UploadID, when
// set, must name an upload of the same key (else CodeNotFound).
func (db *DB) CreateJob(ctx context.Context, j *vidmatte.Job, autoStart bool, requestID string) error {
	if err := checkJob(j); err != nil {
		return err
	}
	milli, err := toMilli("credits", j.Credits)
	if err != nil {
		return err
	}
	bg, err := encodeJSON(j.Background, false)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInvalid, "background cannot be encoded")
	}
	comp, err := encodeJSON(j.Composition, j.Composition == nil)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInvalid, "composition cannot be encoded")
	}
	meta, err := encodeJSON(j.Metadata, j.Metadata == nil)
	if err != nil {
		return vidmatte.Wrap(err, vidmatte.CodeInvalid, "metadata cannot be encoded")
	}
	id, now := newID(prefixJob), db.now()
	status, billing := vidmatte.StatusPending, vidmatte.BillingNone
	var queuedAt any
	if autoStart {
		status, billing, queuedAt = vidmatte.StatusQueued, vidmatte.BillingReserved, nanos(now)
	}
	var upload any
	if j.UploadID != "" {
		upload = j.UploadID
	}
	var errCode, errMsg any
	if j.Error != nil {
		errCode, errMsg = string(j.Error.Code), j.Error.Message
	}
	var stored *jobRow
	err = db.write(ctx, "create job", func(tx *txn) error {
		if err := liveKey(ctx, tx, j.KeyID); err != nil {
			return err
		}
		if err := db.checkJobCounts(ctx, tx, j.KeyID, autoStart); err != nil {
			return err
		}
		if j.UploadID != "" {
			if _, err := findUpload(ctx, tx, j.KeyID, j.UploadID); err != nil {
				if vidmatte.ErrorCode(err) == vidmatte.CodeNotFound {
					return &vidmatte.Error{Code: vidmatte.CodeNotFound, Field: "video_url", Message: fmt.Sprintf("no upload %q", j.UploadID)}
				}
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, key_id, status, progress, video_url, upload_id, input_path, output_path,
	error_code, error_message, model, output_format, background, background_image_path, composition,
	webhook_url, metadata, duration_sec, frames_total, frames_done, credits_milli, billing_status,
	attempts, worker, request_id, created_at, queued_at, updated_at)
VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, '', ?, ?, ?, ?)`,
			id, j.KeyID, status, j.VideoURL, upload, j.InputPath, j.OutputPath,
			errCode, errMsg, j.Model, j.OutputFormat, bg, j.Background.ImagePath, comp,
			j.WebhookURL, meta, j.DurationSec, j.FramesTotal, milli, billing,
			requestID, nanos(now), queuedAt, nanos(now))
		if err != nil {
			return dbError(err, "create job")
		}
		r, err := lockJob(ctx, tx, "", id)
		if err != nil {
			return err
		}
		if autoStart {
			if err := reserve(ctx, tx, &r.Job, milli, now); err != nil {
				return err
			}
		}
		if err := recordTransition(ctx, tx, id, "", status, CauseCreated, requestID, now); err != nil {
			return err
		}
		if err := markIdempotent(ctx, tx, id); err != nil {
			return err
		}
		stored = r
		return nil
	})
	if err != nil {
		return err
	}
	*j = *stored.job()
	return nil
}

// StartJob queues a pending draft of the key: it applies the patch,
// reserves the (patched) credits and records pending → queued. Any other
// status is CodeConflict; a short balance is CodeInsufficientCredits with
// nothing changed.
func (db *DB) StartJob(ctx context.Context, keyID, id string, patch vidmatte.JobPatch, requestID string) (*vidmatte.Job, error) {
	return db.changeJob(ctx, "start job", keyID, id, func(tx *txn, r *jobRow) error {
		if r.Status != vidmatte.StatusPending {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a pending draft can be started", id, r.Status)
		}
		j := r.Job
		milli := r.milli
		if patch.Model != nil {
			j.Model = *patch.Model
		}
		if patch.OutputFormat != nil {
			j.OutputFormat = *patch.OutputFormat
		}
		if patch.Background != nil {
			j.Background = *patch.Background
		}
		if patch.Composition != nil {
			j.Composition = patch.Composition
		}
		if patch.Credits != nil {
			var err error
			if milli, err = toMilli("credits", *patch.Credits); err != nil {
				return err
			}
		}
		if err := checkJob(&j); err != nil {
			return err
		}
		if err := liveKey(ctx, tx, j.KeyID); err != nil {
			return err
		}
		if err := db.checkJobCounts(ctx, tx, j.KeyID, true); err != nil {
			return err
		}
		bg, err := encodeJSON(j.Background, false)
		if err != nil {
			return vidmatte.Wrap(err, vidmatte.CodeInvalid, "background cannot be encoded")
		}
		comp, err := encodeJSON(j.Composition, j.Composition == nil)
		if err != nil {
			return vidmatte.Wrap(err, vidmatte.CodeInvalid, "composition cannot be encoded")
		}
		now := db.now()
		if err := setStatus(ctx, tx, r, vidmatte.StatusQueued, now,
			"model = ?, output_format = ?, background = ?, background_image_path = ?, composition = ?, credits_milli = ?, billing_status = 'reserved', queued_at = ?",
			j.Model, j.OutputFormat, bg, j.Background.ImagePath, comp, milli, nanos(now)); err != nil {
			return err
		}
		j.ID = r.ID
		if err := reserve(ctx, tx, &j, milli, now); err != nil {
			return err
		}
		if err := recordTransition(ctx, tx, id, r.Status, vidmatte.StatusQueued, CauseStarted, requestID, now); err != nil {
			return err
		}
		return nil
	})
}

// FindJob returns a job of the key; keyID "" finds any key's job (the
// runner). Another key's job is CodeNotFound, like a missing one.
func (db *DB) FindJob(ctx context.Context, keyID, id string) (*vidmatte.Job, error) {
	r, err := findJob(ctx, db.r, keyID, id)
	if err != nil {
		return nil, err
	}
	return r.job(), nil
}

func findJob(ctx context.Context, q queryer, keyID, id string) (*jobRow, error) {
	return readJob(ctx, q, keyID, id, "")
}

// readJob reads a job, with a row lock when lock is " FOR_UPDATE".
func readJob(ctx context.Context, q queryer, keyID, id, lock string) (*jobRow, error) {
	query, args := "SELECT "+jobColumns+" FROM jobs WHERE id = ?", []any{id}
	if keyID != "" {
		query += " AND key_id = ?"
		args = append(args, keyID)
	}
	query += lock
	r, err := scanJob(q.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "no job %q", id)
	}
	if err != nil {
		return nil, dbError(err, "read job")
	}
	return r, nil
}

// lockJob reads a job inside a write transaction, locking its row
// (SQLite's write transactions hold the whole database already).
func lockJob(ctx context.Context, tx *txn, keyID, id string) (*jobRow, error) {
	return readJob(ctx, tx, keyID, id, " FOR_UPDATE")
}

// reread returns the job as the transaction now sees it.
func (db *DB) reread(ctx context.Context, tx *txn, id string) (*vidmatte.Job, error) {
	r, err := lockJob(ctx, tx, "", id)
	if err != nil {
		return nil, err
	}
	return r.job(), nil
}

// ListJobs lists the key's jobs (keyID "" = every key's), newest first,
// optionally of one status. Limit is 1..100 (0 means 20).
func (db *DB) ListJobs(ctx context.Context, keyID string, f vidmatte.JobFilter) ([]*vidmatte.Job, error) {
	limit, err := checkLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if f.Offset < 0 {
		return nil, vidmatte.FieldErrorf("offset", "must not be negative")
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, vidmatte.FieldErrorf("status", "unknown status %q", f.Status)
	}
	var (
		where []string
		args  []any
	)
	if keyID != "" {
		where, args = append(where, "key_id = ?"), append(args, keyID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	query := "SELECT " + jobColumns + " FROM jobs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
	args = append(args, limit, f.Offset)
	rs, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError(err, "list jobs")
	}
	rows, err := scanJobs(rs, "list jobs")
	if err != nil {
		return nil, err
	}
	js := make([]*vidmatte.Job, len(rows))
	for i, r := range rows {
		js[i] = r.job()
	}
	return js, nil
}

// scanJobs reads every row of rs (jobColumns) and closes it.
func scanJobs(rs *sql.Rows, what string) ([]*jobRow, error) {
	defer rs.Close()
	var rows []*jobRow
	for rs.Next() {
		r, err := scanJob(rs)
		if err != nil {
			return nil, dbError(err, what)
		}
		rows = append(rows, r)
	}
	return rows, dbError(rs.Err(), what)
}

// changeJob locks a job of the key (keyID "" = any key) in a write
// transaction, runs change on it, and returns the job as it is afterwards.
func (db *DB) changeJob(ctx context.Context, what, keyID, id string, change func(tx *txn, r *jobRow) error) (*vidmatte.Job, error) {
	var out *vidmatte.Job
	err := db.write(ctx, what, func(tx *txn) error {
		r, err := lockJob(ctx, tx, keyID, id)
		if err != nil {
			return err
		}
		if err := change(tx, r); err != nil {
			return err
		}
		if err := markIdempotent(ctx, tx, id); err != nil {
			return err
		}
		out, err = db.reread(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CancelJob cancels a pending, queued or processing job of the key (keyID
// "" = any key) and refunds its reservation, if it has one. A terminal job
// is CodeConflict and nothing changes. A runner learns of the cancel from
// SetJobProgress; its later CompleteJob or FailJob is a conflict.
func (db *DB) CancelJob(ctx context.Context, keyID, id, cause, requestID string) (*vidmatte.Job, error) {
	if cause = strings.TrimSpace(cause); cause == "" {
		cause = "canceled"
	}
	return db.changeJob(ctx, "cancel job", keyID, id, func(tx *txn, r *jobRow) error {
		if r.Status.Terminal() {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is already %s", id, r.Status)
		}
		now := db.now()
		if err := db.end(ctx, tx, r, vidmatte.StatusCanceled, cause, requestID, now, ""); err != nil {
			return err
		}
		return nil
	})
}

// end moves a job to canceled or failed and refunds its reservation.
func (db *DB) end(ctx context.Context, tx *txn, r *jobRow, to vidmatte.Status, cause, requestID string, now time.Time, extra string, args ...any) error {
	billing := r.BillingStatus
	if billing == vidmatte.BillingReserved {
		billing = vidmatte.BillingRefunded
	}
	set := "billing_status = ?, completed_at = ?"
	if extra != "" {
		set += ", " + extra
	}
	if err := setStatus(ctx, tx, r, to, now, set, append([]any{billing, nanos(now)}, args...)...); err != nil {
		return err
	}
	if r.BillingStatus == vidmatte.BillingReserved {
		if err := refund(ctx, tx, &r.Job, r.milli, now); err != nil {
			return err
		}
	}
	if to == vidmatte.StatusFailed {
		if err := queueEvent(ctx, tx, &r.Job, vidmatte.EventJobFailed, now); err != nil {
			return err
		}
	}
	return recordTransition(ctx, tx, r.ID, r.Status, to, cause, requestID, now)
}

// setStatus moves a job from its status to another, with more columns to
// set, after checking the move is allowed. The UPDATE is guarded by the
// status read, so a job changed behind the caller's back is a conflict.
func setStatus(ctx context.Context, tx *txn, r *jobRow, to vidmatte.Status, now time.Time, set string, args ...any) error {
	if !r.Status.CanTransition(to) {
		return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; it cannot become %s", r.ID, r.Status, to)
	}
	query := "UPDATE jobs SET status = ?, updated_at = ?"
	if set != "" {
		query += ", " + set
	}
	query += " WHERE id = ? AND status = ?"
	all := append(append([]any{to, nanos(now)}, args...), r.ID, r.Status)
	res, err := tx.ExecContext(ctx, query, all...)
	if err != nil {
		return dbError(err, "update job status")
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return vidmatte.Errorf(vidmatte.CodeConflict, "job %s changed status meanwhile", r.ID)
	}
	return nil
}

// recordTransition writes one row of a job's status history.
func recordTransition(ctx context.Context, tx *txn, jobID string, from, to vidmatte.Status, cause, requestID string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO job_transitions (job_id, from_status, to_status, cause, request_id, at)
VALUES (?, ?, ?, ?, ?, ?)`, jobID, from, to, clip(cause, 1000), requestID, nanos(at))
	return dbError(err, "record transition")
}

// ClaimJobs moves up to limit queued jobs to processing for worker,
// counting an attempt and setting started_at, and returns them in queue
// order. It is one UPDATE … WHERE id IN (SELECT … LIMIT limit) … RETURNING
// in one write transaction, so two callers, in this process or another,
// never claim the same job. A limit of 0 claims nothing.
//
// Claiming is fair across keys (see claimOrder): one key's long queue
// does not keep another key's job waiting behind it.
func (db *DB) ClaimJobs(ctx context.Context, worker string, limit int) ([]*vidmatte.Job, error) {
	if worker == "" {
		return nil, vidmatte.FieldErrorf("worker", "is required")
	}
	if limit < 0 || limit > maxClaim {
		return nil, vidmatte.FieldErrorf("max", "must be between 0 and %d", maxClaim)
	}
	claimed := []*vidmatte.Job{}
	if limit == 0 {
		return claimed, nil
	}
	var rows []*jobRow
	err := db.write(ctx, "claim jobs", func(tx *txn) error {
		if db.d == postgresDialect {
			// One claim at a time in the cluster: the fair order reads
			// every key's queue, which a row lock cannot cover.
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", advisoryClaim); err != nil {
				return dbError(err, "claim jobs")
			}
		}
		now := db.now()
		until, err := db.leaseUntil(ctx, tx)
		if err != nil {
			return err
		}
		rs, err := tx.QueryContext(ctx, `UPDATE jobs
SET status = 'processing', worker = ?, attempts = attempts + 1, started_at = ?, updated_at = ?,
	lease_token = lease_token + 1, lease_until = ?, claimed_frames = frames_done
WHERE status = 'queued' AND id IN (`+claimOrder+`)
RETURNING `+jobColumns, worker, nanos(now), nanos(now), until, limit)
		if err != nil {
			return dbError(err, "claim jobs")
		}
		if rows, err = scanJobs(rs, "claim jobs"); err != nil {
			return err
		}
		for _, r := range rows {
			if err := recordTransition(ctx, tx, r.ID, vidmatte.StatusQueued, vidmatte.StatusProcessing, CauseClaimed+" by "+worker, "", now); err != nil {
				return err
			}
			if err := queueEvent(ctx, tx, &r.Job, vidmatte.EventJobStarted, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(rows, func(a, b int) bool {
		if rows[a].queuedAt != rows[b].queuedAt {
			return rows[a].queuedAt < rows[b].queuedAt
		}
		if !rows[a].CreatedAt.Equal(rows[b].CreatedAt) {
			return rows[a].CreatedAt.Before(rows[b].CreatedAt)
		}
		return rows[a].ID < rows[b].ID
	})
	for _, r := range rows {
		claimed = append(claimed, r.job())
	}
	return claimed, nil
}

// claimOrder selects the ids of the next queued jobs to claim, at most one
// bound parameter (the limit) of them, fairly across keys: each key's
// queued jobs take turns numbered from how many of its jobs are already
// processing, in the key's own queue order, so the keys' queues are served
// round-robin and a key that has jobs running waits behind one that has
// none. Between keys on the same turn the one served longest ago (or
// never) goes first, so with one free slot at a time keys still alternate;
// then queue order decides. One key's 300 queued jobs thus delay another
// key's single job by at most one claim.
const claimOrder = `WITH waiting AS (
	SELECT DISTINCT key_id FROM jobs WHERE status = 'queued'
), served AS MATERIALIZED (
	SELECT w.key_id,
		(SELECT count(*) FROM jobs p WHERE p.status = 'processing' AND p.key_id = w.key_id) AS running,
		(SELECT max(s.started_at) FROM jobs s WHERE s.key_id = w.key_id) AS last_started
	FROM waiting w
), turns AS (
	SELECT j.id, j.queued_at, j.created_at, s.last_started,
		s.running + row_number() OVER (PARTITION BY j.key_id ORDER BY j.queued_at, j.created_at, j.id) AS turn
	FROM jobs j JOIN served s ON s.key_id = j.key_id
	WHERE j.status = 'queued'
)
SELECT id FROM turns ORDER BY turn, last_started NULLS FIRST, queued_at, created_at, id LIMIT ?`

// SetJobProgress records the progress (0..100) and frame counts of a
// processing job. None of them goes backwards: a lower value is ignored,
// and a call that changes nothing writes nothing. It returns the job's
// status, so a runner learns of a cancel; a job that is not processing is
// left as it is.
func (db *DB) SetJobProgress(ctx context.Context, l vidmatte.Lease, progress int, framesDone, framesTotal int64) (vidmatte.Status, error) {
	id := l.JobID
	switch {
	case progress < 0 || progress > 100:
		return "", vidmatte.FieldErrorf("progress", "must be between 0 and 100")
	case framesDone < 0 || framesTotal < 0:
		return "", vidmatte.FieldErrorf("frames", "must not be negative")
	}
	var status vidmatte.Status
	err := db.write(ctx, "set job progress", func(tx *txn) error {
		var s string
		err := tx.QueryRowContext(ctx, `UPDATE jobs
SET progress = greatest(progress, ?), frames_done = greatest(frames_done, ?), frames_total = greatest(frames_total, ?), updated_at = ?
WHERE id = ? AND status = 'processing' AND lease_token = ? AND (progress < ? OR frames_done < ? OR frames_total < ?)
RETURNING status`, progress, framesDone, framesTotal, nanos(db.now()), id, l.Token, progress, framesDone, framesTotal).Scan(&s)
		if errors.Is(err, sql.ErrNoRows) {
			var token int64
			err = tx.QueryRowContext(ctx, "SELECT status, lease_token FROM jobs WHERE id = ?", id).Scan(&s, &token)
			if errors.Is(err, sql.ErrNoRows) {
				return vidmatte.Errorf(vidmatte.CodeNotFound, "no job %q", id)
			}
			if err == nil && token != l.Token {
				status = vidmatte.Status(s)
				return errLeaseLost(id)
			}
		}
		if err != nil {
			return dbError(err, "set job progress")
		}
		status = vidmatte.Status(s)
		return nil
	})
	return status, err
}

// CompleteJob marks a processing job completed with its output, progress
// 100, and charges its reservation (a charge ledger row, once): all of it,
// or, when out.Frames says fewer frames were processed than the job was
// reserved for, the seconds processed (rounded up) at the reserved rate,
// the rest going back to the balance in the same transaction. Any other
// status, a second completion included, is CodeConflict with nothing
// changed.
func (db *DB) CompleteJob(ctx context.Context, l vidmatte.Lease, out vidmatte.JobOutput) (*vidmatte.Job, error) {
	id := l.JobID
	outputPath := out.Path
	if outputPath == "" {
		return nil, vidmatte.FieldErrorf("output_path", "is required")
	}
	if out.Size < 0 || out.Frames < 0 {
		return nil, vidmatte.FieldErrorf("output", "size and frames must not be negative")
	}
	return db.changeJob(ctx, "complete job", "", id, func(tx *txn, r *jobRow) error {
		if r.LeaseToken != l.Token {
			return errLeaseLost(id)
		}
		if r.Status != vidmatte.StatusProcessing {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a processing job can be completed", id, r.Status)
		}
		billing := r.BillingStatus
		if billing == vidmatte.BillingReserved {
			billing = vidmatte.BillingCharged
		}
		now := db.now()
		if err := setStatus(ctx, tx, r, vidmatte.StatusCompleted, now,
			"progress = 100, output_path = ?, output_size = ?, billing_status = ?, completed_at = ?", outputPath, out.Size, billing, nanos(now)); err != nil {
			return err
		}
		if r.BillingStatus == vidmatte.BillingReserved {
			milli, secs := processedCharge(&r.Job, r.milli, out.Frames)
			if err := charge(ctx, tx, &r.Job, milli, secs, now); err != nil {
				return err
			}
			if back := r.milli - milli; back > 0 {
				if _, err := tx.ExecContext(ctx, "UPDATE keys SET balance_milli = balance_milli + ? WHERE id = ?", back, r.KeyID); err != nil {
					return dbError(err, "return unprocessed credits")
				}
			}
			if _, err := tx.ExecContext(ctx, "UPDATE jobs SET credits_milli = ? WHERE id = ?", milli, id); err != nil {
				return dbError(err, "record the charge")
			}
		}
		if err := recordTransition(ctx, tx, id, r.Status, vidmatte.StatusCompleted, CauseCompleted, "", now); err != nil {
			return err
		}
		if err := queueEvent(ctx, tx, &r.Job, vidmatte.EventJobCompleted, now); err != nil {
			return err
		}
		return nil
	})
}

// FailJob marks a processing job failed with e (an empty code becomes
// internal_error) and refunds its reservation, once. Any other status is
// CodeConflict with nothing changed. The transition's cause is the error.
func (db *DB) FailJob(ctx context.Context, l vidmatte.Lease, e vidmatte.JobError) (*vidmatte.Job, error) {
	id := l.JobID
	if e.Code == "" {
		e.Code = vidmatte.CodeInternal
	}
	if e.Message == "" {
		e.Message = "processing failed"
	}
	return db.changeJob(ctx, "fail job", "", id, func(tx *txn, r *jobRow) error {
		if r.LeaseToken != l.Token {
			return errLeaseLost(id)
		}
		if r.Status != vidmatte.StatusProcessing {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a processing job can fail", id, r.Status)
		}
		cause := "failed: " + string(e.Code) + ": " + e.Message
		if err := db.end(ctx, tx, r, vidmatte.StatusFailed, cause, "", db.now(), "error_code = ?, error_message = ?", e.Code, e.Message); err != nil {
			return err
		}
		return nil
	})
}

// RequeueJob puts a processing job back in the queue, at its old place,
// keeping its reservation (a draining daemon). The attempt it was on is
// given back: being interrupted by a shutdown is not the job's fault.
// Any other status is CodeConflict.
func (db *DB) RequeueJob(ctx context.Context, l vidmatte.Lease, cause string) (*vidmatte.Job, error) {
	id := l.JobID
	if cause = strings.TrimSpace(cause); cause == "" {
		cause = "requeued"
	}
	return db.changeJob(ctx, "requeue job", "", id, func(tx *txn, r *jobRow) error {
		if r.LeaseToken != l.Token {
			return errLeaseLost(id)
		}
		if r.Status != vidmatte.StatusProcessing {
			return vidmatte.Errorf(vidmatte.CodeConflict, "job %s is %s; only a processing job can be requeued", id, r.Status)
		}
		now := db.now()
		if err := setStatus(ctx, tx, r, vidmatte.StatusQueued, now, "worker = '', lease_until = NULL, attempts = greatest(attempts - 1, 0)"); err != nil {
			return err
		}
		if err := recordTransition(ctx, tx, id, r.Status, vidmatte.StatusQueued, cause, "", now); err != nil {
			return err
		}
		return nil
	})
}

// RecoverJobs takes back every job left processing, as a daemon does when
// it starts after a crash and before it claims: a job that has used fewer
// than maxAttempts attempts (each claim counts one) goes back to the queue
// at its old place; one that has used them all fails with cause "too many
// attempts" and is refunded. It returns the jobs it touched, in queue
// order. It assumes one daemon per database: it does not ask which worker
// holds a job.
func (db *DB) RecoverJobs(ctx context.Context, maxAttempts int) ([]*vidmatte.Job, error) {
	if maxAttempts < 1 {
		return nil, vidmatte.FieldErrorf("max_attempts", "must be at least 1")
	}
	out := []*vidmatte.Job{}
	err := db.write(ctx, "recover jobs", func(tx *txn) error {
		out = out[:0]
		rs, err := tx.QueryContext(ctx, "SELECT "+jobColumns+" FROM jobs WHERE status = 'processing' ORDER BY queued_at, created_at, id")
		if err != nil {
			return dbError(err, "recover jobs")
		}
		rows, err := scanJobs(rs, "recover jobs")
		if err != nil {
			return err
		}
		var err2 error
		if out, err2 = db.takeBack(ctx, tx, rows, maxAttempts, CauseRecovered); err2 != nil {
			return err2
		}
		// A daemon alone on its store recovers every segment it held too.
		_, err2 = tx.ExecContext(ctx, "UPDATE job_segments SET lease_until = 0 WHERE state = ?", segRunning)
		return dbError(err2, "recover jobs")
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CauseReaped requeues a job that a live runner's worker held in the
// store but no longer ran (its outcome could not be written).
const CauseReaped = "requeued: no runner holds it"

// ReapJobs takes back the jobs that worker holds as processing in the
// store but does not run any more: every processing job of worker whose id
// is not in held. It is what a runner calls periodically when the write of
// a job's outcome (completion, failure, requeue) failed for good, so that
// no job stays processing with its credits reserved until a restart. Like
// RecoverJobs, a job that has used fewer than maxAttempts attempts goes
// back to the queue at its old place with its reservation, the attempt
// counted; one that has used them all fails with cause "too many attempts"
// and is refunded. It returns the jobs it touched, in queue order. Jobs of
// other workers are left alone: RecoverJobs takes those of a dead daemon
// when the next one starts.
func (db *DB) ReapJobs(ctx context.Context, worker string, held []string, maxAttempts int) ([]*vidmatte.Job, error) {
	if worker == "" {
		return nil, vidmatte.FieldErrorf("worker", "is required")
	}
	if maxAttempts < 1 {
		return nil, vidmatte.FieldErrorf("max_attempts", "must be at least 1")
	}
	if held == nil {
		held = []string{}
	}
	ids, err := json.Marshal(held)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInvalid, "held job ids cannot be encoded")
	}
	out := []*vidmatte.Job{}
	err = db.write(ctx, "reap jobs", func(tx *txn) error {
		out = out[:0]
		rs, err := tx.QueryContext(ctx, "SELECT "+jobColumns+` FROM jobs
WHERE status = 'processing' AND worker = ? AND id NOT IN json_values(?)
ORDER BY queued_at, created_at, id`, worker, string(ids))
		if err != nil {
			return dbError(err, "reap jobs")
		}
		rows, err := scanJobs(rs, "reap jobs")
		if err != nil {
			return err
		}
		var err2 error
		out, err2 = db.takeBack(ctx, tx, rows, maxAttempts, CauseReaped)
		return err2
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Transitions returns a job's status history in the order it happened,
// its creation first. An unknown job is CodeNotFound.
func (db *DB) Transitions(ctx context.Context, id string) ([]vidmatte.Transition, error) {
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err, "read transitions")
	}
	defer tx.Rollback()
	if _, err := findJob(ctx, tx, "", id); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT from_status, to_status, cause, request_id, at FROM job_transitions WHERE job_id = ? ORDER BY seq", id)
	if err != nil {
		return nil, dbError(err, "read transitions")
	}
	defer rows.Close()
	ts := []vidmatte.Transition{}
	for rows.Next() {
		var (
			t        vidmatte.Transition
			from, to string
			at       int64
		)
		if err := rows.Scan(&from, &to, &t.Cause, &t.RequestID, &at); err != nil {
			return nil, dbError(err, "read transitions")
		}
		t.From, t.To, t.At = vidmatte.Status(from), vidmatte.Status(to), fromNanos(at)
		ts = append(ts, t)
	}
	return ts, dbError(rows.Err(), "read transitions")
}

// CountJobs counts jobs by status; every status is in the map, zeros
// included.
func (db *DB) CountJobs(ctx context.Context) (map[vidmatte.Status]int, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT status, count(*) FROM jobs GROUP BY status")
	if err != nil {
		return nil, dbError(err, "count jobs")
	}
	defer rows.Close()
	counts := map[vidmatte.Status]int{}
	for _, s := range []vidmatte.Status{vidmatte.StatusPending, vidmatte.StatusQueued, vidmatte.StatusProcessing,
		vidmatte.StatusCompleted, vidmatte.StatusFailed, vidmatte.StatusCanceled} {
		counts[s] = 0
	}
	for rows.Next() {
		var (
			s string
			n int
		)
		if err := rows.Scan(&s, &n); err != nil {
			return nil, dbError(err, "count jobs")
		}
		counts[vidmatte.Status(s)] = n
	}
	return counts, dbError(rows.Err(), "count jobs")
}

// takeBack puts interrupted processing jobs back in the queue at their old
// place, or fails (refunded) those whose last maxAttempts attempts in a
// row made no progress, and returns them as they now are. An attempt made
// progress when it moved frames_done past where it was at the claim: an
// interruption after progress does not count against the job, and a job
// that stops at the same point again and again is still caught.
func (db *DB) takeBack(ctx context.Context, tx *txn, rows []*jobRow, maxAttempts int, cause string) ([]*vidmatte.Job, error) {
	out := []*vidmatte.Job{}
	now := db.now()
	for _, r := range rows {
		stalled := r.stalled + 1
		if r.FramesDone > r.claimedFrames {
			stalled = 0
		}
		if stalled >= maxAttempts {
			msg := fmt.Sprintf("processing was interrupted %d times in a row without progress; giving up", stalled)
			if err := db.end(ctx, tx, r, vidmatte.StatusFailed, CauseTooManyAttempts, "", now,
				"worker = '', lease_until = NULL, stalled_attempts = ?, error_code = ?, error_message = ?", stalled, vidmatte.CodeInternal, msg); err != nil {
				return nil, err
			}
		} else {
			if err := setStatus(ctx, tx, r, vidmatte.StatusQueued, now, "worker = '', lease_until = NULL, stalled_attempts = ?", stalled); err != nil {
				return nil, err
			}
			if err := recordTransition(ctx, tx, r.ID, r.Status, vidmatte.StatusQueued, cause, "", now); err != nil {
				return nil, err
			}
		}
		// The segments its runner held are free for the next claim at
		// once; those of daemons helping with it stay theirs.
		if _, err := tx.ExecContext(ctx, "UPDATE job_segments SET lease_until = 0 WHERE job_id = ? AND worker = ? AND state = ?",
			r.ID, r.worker, segRunning); err != nil {
			return nil, dbError(err, "free a job's segments")
		}
		j, err := db.reread(ctx, tx, r.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
