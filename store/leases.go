package store

import (
	"context"
	"encoding/json"
	"time"

	"vidmatte"
)

// DefaultLease is how long a claim holds a job without a heartbeat.
const DefaultLease = 30 * time.Second

// CauseRescued requeues a job whose lease ran out: its runner died, froze
// or lost the database.
const CauseRescued = "requeued: its lease ran out"

// SetLease sets how long a claim or a heartbeat holds a job (DefaultLease
// when zero). Call it before the store is shared.
func (db *DB) SetLease(d time.Duration) { db.lease = d }

func (db *DB) leaseLength() time.Duration {
	if db.lease <= 0 {
		return DefaultLease
	}
	return db.lease
}

// clock is the database's time, which leases are measured on, so that
// daemons whose clocks disagree still agree on when a lease runs out. On
// SQLite (one machine) it is the store's clock.
func (db *DB) clock(ctx context.Context, tx *txn) (int64, error) {
	if db.d != postgresDialect {
		return nanos(db.now()), nil
	}
	var n int64
	err := tx.QueryRowContext(ctx, "SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000000000 AS BIGINT)").Scan(&n)
	return n, dbError(err, "read the database clock")
}

// leaseUntil is when a lease taken or renewed now runs out.
func (db *DB) leaseUntil(ctx context.Context, tx *txn) (int64, error) {
	now, err := db.clock(ctx, tx)
	if err != nil {
		return 0, err
	}
	return now + int64(db.leaseLength()), nil
}

func errLeaseLost(id string) error {
	return &vidmatte.Error{Code: vidmatte.CodeConflict, Err: vidmatte.ErrLeaseLost,
		Message: "job " + id + ": the lease this runner holds is no longer the job's (it ran out and the job was taken back)"}
}

// Heartbeat renews the leases of worker that are still the jobs' (the job
// is processing, held by worker, with the lease's token), and returns the
// others with their job's status. One UPDATE renews them all.
func (db *DB) Heartbeat(ctx context.Context, worker string, leases []vidmatte.Lease) (map[string]vidmatte.Status, error) {
	lost := map[string]vidmatte.Status{}
	if len(leases) == 0 {
		return lost, nil
	}
	ids := make([]string, 0, len(leases))
	want := make(map[string]int64, len(leases))
	for _, l := range leases {
		ids = append(ids, l.JobID)
		want[l.JobID] = l.Token
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, vidmatte.Wrap(err, vidmatte.CodeInvalid, "lease ids cannot be encoded")
	}
	err = db.write(ctx, "heartbeat", func(tx *txn) error {
		clear(lost)
		until, err := db.leaseUntil(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT id, status, worker, lease_token FROM jobs WHERE id IN json_values(?) FOR_UPDATE", string(list))
		if err != nil {
			return dbError(err, "heartbeat")
		}
		type state struct {
			status vidmatte.Status
			worker string
			token  int64
		}
		seen := map[string]state{}
		for rows.Next() {
			var id, status, w string
			var token int64
			if err := rows.Scan(&id, &status, &w, &token); err != nil {
				rows.Close()
				return dbError(err, "heartbeat")
			}
			seen[id] = state{vidmatte.Status(status), w, token}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError(err, "heartbeat")
		}
		var held []string
		for _, id := range ids {
			st, ok := seen[id]
			switch {
			case !ok:
				lost[id] = ""
			case st.status != vidmatte.StatusProcessing || st.worker != worker || st.token != want[id]:
				lost[id] = st.status
			default:
				held = append(held, id)
			}
		}
		if len(held) == 0 {
			return nil
		}
		renew, err := json.Marshal(held)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE jobs SET lease_until = ? WHERE status = 'processing' AND id IN json_values(?)", until, string(renew))
		return dbError(err, "heartbeat")
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// RescueJobs takes back the processing jobs whose lease has run out on the
// database's clock, whichever worker held them. It skips the rows another
// transaction holds, so a rescuer never waits on a daemon frozen
// mid-transaction: that daemon's session ends after idleInTransaction, and
// a later rescue takes the job.
func (db *DB) RescueJobs(ctx context.Context, maxAttempts int) ([]*vidmatte.Job, error) {
	if maxAttempts < 1 {
		return nil, vidmatte.FieldErrorf("max_attempts", "must be at least 1")
	}
	var out []*vidmatte.Job
	err := db.write(ctx, "rescue jobs", func(tx *txn) error {
		now, err := db.clock(ctx, tx)
		if err != nil {
			return err
		}
		rs, err := tx.QueryContext(ctx, "SELECT "+jobColumns+` FROM jobs
WHERE status = 'processing' AND lease_until < ? ORDER BY queued_at, created_at, id FOR_UPDATE SKIP_LOCKED`, now)
		if err != nil {
			return dbError(err, "rescue jobs")
		}
		rows, err := scanJobs(rs, "rescue jobs")
		if err != nil {
			return err
		}
		out, err = db.takeBack(ctx, tx, rows, maxAttempts, CauseRescued)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
