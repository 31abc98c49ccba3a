package store

import (
	"context"
	"time"

	"vidmatte"
)

// JobsChangedSince returns the key's jobs whose last change (updated_at)
// is at or after since, in the order they changed (oldest change first),
// at most limit of them (1..100; 0 means 20). It is what a stream of job
// changes polls: every status change and every progress report sets
// updated_at in the transaction that makes it, so a job that changed is
// found whichever daemon of a cluster changed it. A caller that polls
// again from the newest updated_at it saw, less a margin for clocks that
// differ between daemons and for transactions that commit after a later
// one began, misses no change; it sees a job again when nothing about it
// changed and tells that from the job itself.
func (db *DB) JobsChangedSince(ctx context.Context, keyID string, since time.Time, limit int) ([]*vidmatte.Job, error) {
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, err
	}
	if keyID == "" {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "store: jobs changed since: no key")
	}
	rs, err := db.r.QueryContext(ctx, "SELECT "+jobColumns+` FROM jobs
WHERE key_id = ? AND updated_at >= ?
ORDER BY updated_at, id LIMIT ?`, keyID, nanos(since), limit)
	if err != nil {
		return nil, dbError(err, "jobs changed since")
	}
	rows, err := scanJobs(rs, "jobs changed since")
	if err != nil {
		return nil, err
	}
	js := make([]*vidmatte.Job, len(rows))
	for i, r := range rows {
		js[i] = r.job()
	}
	return js, nil
}
