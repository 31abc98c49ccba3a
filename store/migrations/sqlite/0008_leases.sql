-- A processing job is held by a lease: a fencing token that grows at every
-- claim, which each of the runner's writes must carry, and an expiry on
-- the database's clock that the runner's heartbeats push forward. A job
-- whose lease has run out is rescued by any daemon.
ALTER TABLE jobs ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN lease_until BIGINT;
CREATE INDEX jobs_leases ON jobs (status, lease_until);
