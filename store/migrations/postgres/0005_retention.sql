-- As SQLite's 0005: retention and quotas.
ALTER TABLE uploads ADD COLUMN fetched BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE uploads ADD COLUMN expired_at BIGINT;
CREATE INDEX uploads_live ON uploads (expired_at, created_at);

ALTER TABLE jobs ADD COLUMN output_size BIGINT NOT NULL DEFAULT 0 CHECK (output_size >= 0);
ALTER TABLE jobs ADD COLUMN output_expired_at BIGINT;
CREATE INDEX jobs_outputs_live ON jobs (status, output_expired_at, completed_at);
