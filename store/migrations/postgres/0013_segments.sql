-- A job is processed in segments of a few seconds, on a grid its first
-- claim records (job_segment_plans), so that every daemon working on the
-- job cuts it alike. A segment is claimed with a lease of its own (state
-- 'running'), by the job's runner or by a daemon helping with it, and
-- recorded with its output part when finished (state 'done'): an
-- interrupted job loses only the segments being processed. Timestamps are
-- in the input's video time base.
CREATE TABLE job_segment_plans (
	job_id       TEXT PRIMARY KEY REFERENCES jobs (id),
	origin_pts   BIGINT NOT NULL,
	length_ticks BIGINT NOT NULL,
	count        INTEGER NOT NULL,
	created_at   BIGINT NOT NULL
);

CREATE TABLE job_segments (
	job_id      TEXT NOT NULL REFERENCES jobs (id),
	seq         INTEGER NOT NULL,
	state       TEXT NOT NULL,
	worker      TEXT NOT NULL,
	token       BIGINT NOT NULL,
	lease_until BIGINT NOT NULL,
	first_pts   BIGINT NOT NULL DEFAULT 0,
	frames      BIGINT NOT NULL DEFAULT 0,
	part_path   TEXT NOT NULL DEFAULT '',
	part_size   BIGINT NOT NULL DEFAULT 0,
	updated_at  BIGINT NOT NULL,
	PRIMARY KEY (job_id, seq)
);
