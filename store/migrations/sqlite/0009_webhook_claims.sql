-- A delivery is claimed for one attempt by one daemon at a time: claimed_until
-- (the database clock, nanoseconds) keeps the others from sending it too,
-- and lets another daemon send it once the claim runs out (its sender died).
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
