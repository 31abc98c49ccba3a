-- As SQLite's 0002: a claim of an Idempotency-Key holds a lease.
ALTER TABLE idempotency ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
