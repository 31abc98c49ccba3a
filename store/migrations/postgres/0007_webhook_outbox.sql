-- As SQLite's 0007: deliveries by host.
ALTER TABLE webhook_deliveries ADD COLUMN host TEXT NOT NULL DEFAULT '';
CREATE INDEX webhook_deliveries_host_due ON webhook_deliveries (delivered, failed, host, next_attempt_at);
