-- What a claimed request created or changed (a job, an upload), written in
-- the same transaction as that change: a retry that takes over the claim of
-- a request that died after its change answers with that resource instead
-- of making it again.
ALTER TABLE idempotency ADD COLUMN resource_id TEXT NOT NULL DEFAULT '';
