-- A job is processed in segments of a few seconds; each finished segment's
-- output part is kept, and recorded here by the claim that made it, so an
-- interrupted job resumes at its first unfinished segment on any daemon.
-- Timestamps are in the input's video time base; next_pts is where the
-- following segment starts.
CREATE TABLE job_segments (
	job_id      TEXT NOT NULL REFERENCES jobs (id),
	seq         INTEGER NOT NULL,
	first_pts   BIGINT NOT NULL,
	next_pts    BIGINT NOT NULL,
	frames      BIGINT NOT NULL,
	last        INTEGER NOT NULL DEFAULT 0,
	part_path   TEXT NOT NULL,
	part_size   BIGINT NOT NULL,
	lease_token BIGINT NOT NULL,
	created_at  BIGINT NOT NULL,
	PRIMARY KEY (job_id, seq)
);
