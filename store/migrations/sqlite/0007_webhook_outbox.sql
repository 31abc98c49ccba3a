-- Webhook deliveries are written in the transaction of the job's change
-- that fires them (an outbox) and their body is rendered when sent, so the
-- stored payload is empty for new rows. host is the URL's host: delivery is
-- concurrent per host, and a host at its limit is skipped, not waited for.
ALTER TABLE webhook_deliveries ADD COLUMN host TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_deliveries_host_due ON webhook_deliveries (delivered, failed, host, next_attempt_at);
