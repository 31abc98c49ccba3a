-- Retention and quotas. An upload or an output that has expired keeps its
-- row (jobs and the ledger refer to it) but its file is gone; fetched
-- uploads (a video_url the daemon downloaded) have a lifetime of their own.

ALTER TABLE uploads ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0 CHECK (fetched IN (0, 1));
ALTER TABLE uploads ADD COLUMN expired_at INTEGER;
CREATE INDEX uploads_live ON uploads (expired_at, created_at);

ALTER TABLE jobs ADD COLUMN output_size INTEGER NOT NULL DEFAULT 0 CHECK (output_size >= 0);
ALTER TABLE jobs ADD COLUMN output_expired_at INTEGER;
CREATE INDEX jobs_outputs_live ON jobs (status, output_expired_at, completed_at);
