-- A claim of an Idempotency-Key holds a lease: once it has run out and the
-- claim is still not done, the request that took it died with its daemon
-- and a retry may take the claim over. 0 is a claim without a lease.
ALTER TABLE idempotency ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
