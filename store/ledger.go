package store

import (
	"context"
	"database/sql"
	"math"
	"strconv"
	"time"

	"vidmatte"
)

// Listing limits: a limit of 0 asks for defaultLimit; more than maxLimit is
// invalid.
const (
	defaultLimit = 20
	maxLimit     = 100
	// maxUsageDays is the longest usage window UsageSummary computes.
	maxUsageDays = 366
)

// checkLimit applies the listing limits.
func checkLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return defaultLimit, nil
	case limit < 0 || limit > maxLimit:
		return 0, vidmatte.FieldErrorf("limit", "must be between 1 and %d", maxLimit)
	}
	return limit, nil
}

// formatCredits writes thousandths as a plain decimal number of credits.
func formatCredits(m int64) string { return strconv.FormatFloat(fromMilli(m), 'f', -1, 64) }

// insertLedger writes one credit movement. The unique (job_id, type)
// constraint and the ledger_settle_once trigger make a second reserve,
// charge or refund of a job fail, so a movement is never applied twice.
func insertLedger(ctx context.Context, tx *txn, keyID, typ, jobID string, milli int64, seconds float64, model string, at time.Time) error {
	var job any
	if jobID != "" {
		job = jobID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO ledger (id, key_id, type, job_id, credits_milli, seconds, model, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, newID(prefixEvent), keyID, typ, job, milli, seconds, model, nanos(at))
	return dbError(err, "write ledger "+typ)
}

// reserve takes a job's credits off its key's balance, with the reserve
// ledger row, or fails with CodeInsufficientCredits having written nothing.
func reserve(ctx context.Context, tx *txn, j *vidmatte.Job, milli int64, at time.Time) error {
	res, err := tx.ExecContext(ctx, "UPDATE keys SET balance_milli = balance_milli - ? WHERE id = ? AND balance_milli >= ?", milli, j.KeyID, milli)
	if err != nil {
		return dbError(err, "reserve credits")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var balance int64
		err := tx.QueryRowContext(ctx, "SELECT balance_milli FROM keys WHERE id = ?", j.KeyID).Scan(&balance)
		if err == sql.ErrNoRows {
			return vidmatte.Errorf(vidmatte.CodeNotFound, "no key %q", j.KeyID)
		}
		if err != nil {
			return dbError(err, "read balance")
		}
		return vidmatte.Errorf(vidmatte.CodeInsufficientCredits,
			"insufficient credits: the balance is %s, the job needs %s", formatCredits(balance), formatCredits(milli))
	}
	return insertLedger(ctx, tx, j.KeyID, vidmatte.LedgerReserve, j.ID, milli, j.DurationSec, j.Model, at)
}

// charge turns a job's reservation into spent credits: a charge ledger row
// of what was spent for the seconds processed; the balance already went
// down at the reservation (the caller gives back what was not spent).
func charge(ctx context.Context, tx *txn, j *vidmatte.Job, milli int64, seconds float64, at time.Time) error {
	return insertLedger(ctx, tx, j.KeyID, vidmatte.LedgerCharge, j.ID, milli, seconds, j.Model, at)
}

// processedCharge is what a job that processed frames of its FramesTotal
// is charged of its reservation reserved: the seconds processed, rounded
// up, at the reservation's rate per reserved second; all of it when the
// frames are unknown (0) or cover the whole video.
func processedCharge(j *vidmatte.Job, reserved, frames int64) (int64, float64) {
	if frames <= 0 || j.FramesTotal <= 0 || frames >= j.FramesTotal {
		return reserved, j.DurationSec
	}
	secs := j.DurationSec * float64(frames) / float64(j.FramesTotal)
	full := vidmatte.ReservedSeconds(j.DurationSec)
	milli := int64(math.Round(float64(reserved) * vidmatte.ReservedSeconds(secs) / full))
	return min(milli, reserved), secs
}

// refund gives a job's reservation back to its key: a refund ledger row and
// the balance raised by the same amount.
func refund(ctx context.Context, tx *txn, j *vidmatte.Job, milli int64, at time.Time) error {
	if _, err := tx.ExecContext(ctx, "UPDATE keys SET balance_milli = balance_milli + ? WHERE id = ?", milli, j.KeyID); err != nil {
		return dbError(err, "refund credits")
	}
	return insertLedger(ctx, tx, j.KeyID, vidmatte.LedgerRefund, j.ID, milli, j.DurationSec, j.Model, at)
}

// UsageEvents returns a key's latest ledger events, newest first. Credits
// are the amount moved (never negative); Type says which way: grant and
// refund raise the balance, reserve lowers it, charge spends what was
// reserved. limit is 1..100, 0 meaning 20.
func (db *DB) UsageEvents(ctx context.Context, keyID string, limit int) ([]vidmatte.LedgerEvent, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, err
	}
	if err := db.keyExists(ctx, keyID); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, key_id, type, coalesce(job_id, ''), credits_milli, seconds, model, created_at
FROM ledger WHERE key_id = ? ORDER BY seq DESC LIMIT ?`, keyID, limit)
	if err != nil {
		return nil, dbError(err, "read usage events")
	}
	defer rows.Close()
	evs := []vidmatte.LedgerEvent{}
	for rows.Next() {
		var (
			e       vidmatte.LedgerEvent
			milli   int64
			created int64
		)
		if err := rows.Scan(&e.ID, &e.KeyID, &e.Type, &e.JobID, &milli, &e.Seconds, &e.Model, &created); err != nil {
			return nil, dbError(err, "read usage events")
		}
		e.Credits = fromMilli(milli)
		e.CreatedAt = fromNanos(created)
		evs = append(evs, e)
	}
	return evs, dbError(rows.Err(), "read usage events")
}

// nanosPerDay is the length of a UTC day in stored time units.
const nanosPerDay = int64(24 * time.Hour)

// UsageSummary aggregates a key's charges and refunds per UTC day over the
// days (1..366) ending with now's UTC day, every day present, oldest first.
// A day's Jobs and Seconds count the jobs charged that day. Balance is the
// key's balance now; Reserved is what its queued and processing jobs hold.
func (db *DB) UsageSummary(ctx context.Context, keyID string, days int, now time.Time) (*vidmatte.UsageSummary, error) {
	if days < 1 || days > maxUsageDays {
		return nil, vidmatte.FieldErrorf("days", "must be between 1 and %d", maxUsageDays)
	}
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(days - 1))
	end := today.AddDate(0, 0, 1)

	// One read transaction, so the balance, the reservations and the
	// ledger are one snapshot.
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbError(err, "read usage")
	}
	defer tx.Rollback()

	var balance, reserved int64
	err = tx.QueryRowContext(ctx, `SELECT balance_milli,
	(SELECT CAST(coalesce(sum(credits_milli), 0) AS BIGINT) FROM jobs WHERE key_id = keys.id AND billing_status = 'reserved')
FROM keys WHERE id = ?`, keyID).Scan(&balance, &reserved)
	if err == sql.ErrNoRows {
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "no key %q", keyID)
	}
	if err != nil {
		return nil, dbError(err, "read usage")
	}

	s := &vidmatte.UsageSummary{Days: make([]vidmatte.UsageDay, days), Balance: fromMilli(balance), Reserved: fromMilli(reserved)}
	for i := range s.Days {
		s.Days[i].Date = first.AddDate(0, 0, i).Format(time.DateOnly)
	}
	rows, err := tx.QueryContext(ctx, `SELECT day, type, count(*), coalesce(sum(seconds), 0), CAST(coalesce(sum(credits_milli), 0) AS BIGINT)
FROM (SELECT created_at / ? AS day, type, seconds, credits_milli FROM ledger
	WHERE key_id = ? AND type IN ('charge', 'refund') AND created_at >= ? AND created_at < ?) AS movements
GROUP BY day, type`, nanosPerDay, keyID, nanos(first), nanos(end))
	if err != nil {
		return nil, dbError(err, "read usage")
	}
	defer rows.Close()
	firstDay := nanos(first) / nanosPerDay
	var charged, refunded int64
	dayCredits := make([]int64, days)
	dayRefunds := make([]int64, days)
	for rows.Next() {
		var (
			day, milli int64
			typ        string
			n          int
			seconds    float64
		)
		if err := rows.Scan(&day, &typ, &n, &seconds, &milli); err != nil {
			return nil, dbError(err, "read usage")
		}
		i := day - firstDay
		if i < 0 || i >= int64(days) {
			continue
		}
		d := &s.Days[i]
		switch typ {
		case vidmatte.LedgerCharge:
			d.Jobs += n
			d.Seconds += seconds
			dayCredits[i] += milli
			charged += milli
			s.TotalJobs += n
			s.TotalSeconds += seconds
		case vidmatte.LedgerRefund:
			dayRefunds[i] += milli
			refunded += milli
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "read usage")
	}
	for i := range s.Days {
		s.Days[i].Credits = fromMilli(dayCredits[i])
		s.Days[i].Refunded = fromMilli(dayRefunds[i])
	}
	s.TotalCredits = fromMilli(charged)
	s.TotalRefunded = fromMilli(refunded)
	return s, nil
}

// keyExists is CodeNotFound for an unknown key.
func (db *DB) keyExists(ctx context.Context, keyID string) error {
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM keys WHERE id = ?", keyID).Scan(&n); err != nil {
		return dbError(err, "read key")
	}
	if n == 0 {
		return vidmatte.Errorf(vidmatte.CodeNotFound, "no key %q", keyID)
	}
	return nil
}
