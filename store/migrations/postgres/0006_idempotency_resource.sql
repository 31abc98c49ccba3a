-- As SQLite's 0006: what a claimed request changed.
ALTER TABLE idempotency ADD COLUMN resource_id TEXT NOT NULL DEFAULT '';
