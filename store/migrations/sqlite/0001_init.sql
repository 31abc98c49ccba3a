-- The first schema of the daemon's state. Times are INTEGER unix
-- nanoseconds (UTC); credits are INTEGER thousandths of a credit.

CREATE TABLE keys (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	prefix         TEXT NOT NULL,
	secret_hash    BLOB NOT NULL UNIQUE,  -- sha256 of the secret; the secret is never stored
	balance_milli  INTEGER NOT NULL CHECK (balance_milli >= 0),
	webhook_secret TEXT NOT NULL,
	created_at     INTEGER NOT NULL,
	revoked_at     INTEGER
);
CREATE INDEX keys_prefix ON keys (prefix);

CREATE TABLE uploads (
	id           TEXT PRIMARY KEY,
	key_id       TEXT NOT NULL REFERENCES keys (id),
	filename     TEXT NOT NULL,
	path         TEXT NOT NULL,
	size         INTEGER NOT NULL CHECK (size >= 0),
	duration_sec REAL NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	fps          REAL NOT NULL,
	has_audio    INTEGER NOT NULL CHECK (has_audio IN (0, 1)),
	created_at   INTEGER NOT NULL
);
CREATE INDEX uploads_key ON uploads (key_id, created_at);

CREATE TABLE jobs (
	id                    TEXT PRIMARY KEY,
	key_id                TEXT NOT NULL REFERENCES keys (id),
	status                TEXT NOT NULL CHECK (status IN ('pending', 'queued', 'processing', 'completed', 'failed', 'canceled')),
	progress              INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
	video_url             TEXT NOT NULL,
	upload_id             TEXT REFERENCES uploads (id),
	input_path            TEXT NOT NULL DEFAULT '',
	output_path           TEXT NOT NULL DEFAULT '',
	error_code            TEXT,
	error_message         TEXT,
	model                 TEXT NOT NULL,
	output_format         TEXT NOT NULL,
	background            TEXT NOT NULL,          -- JSON of vidmatte.Background
	background_image_path TEXT NOT NULL DEFAULT '',
	composition           TEXT,                   -- JSON of vidmatte.Composition, or NULL
	webhook_url           TEXT NOT NULL DEFAULT '',
	metadata              TEXT,                   -- JSON object of strings, or NULL
	duration_sec          REAL NOT NULL DEFAULT 0,
	frames_total          INTEGER NOT NULL DEFAULT 0 CHECK (frames_total >= 0),
	frames_done           INTEGER NOT NULL DEFAULT 0 CHECK (frames_done >= 0),
	credits_milli         INTEGER NOT NULL DEFAULT 0 CHECK (credits_milli >= 0),
	billing_status        TEXT NOT NULL CHECK (billing_status IN ('none', 'reserved', 'charged', 'refunded')),
	attempts              INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	worker                TEXT NOT NULL DEFAULT '',  -- the runner holding a processing job
	request_id            TEXT NOT NULL DEFAULT '',  -- the request that created the job
	created_at            INTEGER NOT NULL,
	queued_at             INTEGER,                   -- when it first entered the queue: claim order
	started_at            INTEGER,
	completed_at          INTEGER,
	updated_at            INTEGER NOT NULL
);
CREATE INDEX jobs_key_created ON jobs (key_id, created_at, id);
CREATE INDEX jobs_queue ON jobs (status, queued_at, created_at, id);

CREATE TABLE job_transitions (
	seq         INTEGER PRIMARY KEY,
	job_id      TEXT NOT NULL REFERENCES jobs (id),
	from_status TEXT NOT NULL,  -- '' for the creation
	to_status   TEXT NOT NULL,
	cause       TEXT NOT NULL,
	request_id  TEXT NOT NULL DEFAULT '',
	at          INTEGER NOT NULL
);
CREATE INDEX job_transitions_job ON job_transitions (job_id, seq);

-- The credit ledger. credits_milli is the amount of the movement, never
-- negative; its type says which way the balance went: grant +, reserve -,
-- charge 0 (the reservation becomes spent), refund +.
CREATE TABLE ledger (
	seq           INTEGER PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	key_id        TEXT NOT NULL REFERENCES keys (id),
	type          TEXT NOT NULL CHECK (type IN ('grant', 'reserve', 'charge', 'refund')),
	job_id        TEXT REFERENCES jobs (id),
	credits_milli INTEGER NOT NULL CHECK (credits_milli >= 0),
	seconds       REAL NOT NULL DEFAULT 0,
	model         TEXT NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	UNIQUE (job_id, type),
	CHECK ((type = 'grant') = (job_id IS NULL))
);
CREATE INDEX ledger_key_created ON ledger (key_id, created_at);

-- A job's reservation ends either charged or refunded, never both, and
-- nothing ends that was not reserved.
CREATE TRIGGER ledger_settle_once BEFORE INSERT ON ledger
WHEN NEW.type IN ('charge', 'refund')
BEGIN
	SELECT RAISE(ABORT, 'ledger: job has no reservation')
	WHERE NOT EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND type = 'reserve');
	SELECT RAISE(ABORT, 'ledger: job reservation already settled')
	WHERE EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND type IN ('charge', 'refund'));
END;

CREATE TABLE idempotency (
	key_id       TEXT NOT NULL REFERENCES keys (id),
	key          TEXT NOT NULL,
	method       TEXT NOT NULL,
	path         TEXT NOT NULL,
	body_hash    TEXT NOT NULL,
	done         INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
	status       INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BLOB,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (key_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE webhook_deliveries (
	id              TEXT PRIMARY KEY,
	job_id          TEXT NOT NULL REFERENCES jobs (id),
	key_id          TEXT NOT NULL REFERENCES keys (id),
	event           TEXT NOT NULL,
	url             TEXT NOT NULL,
	payload         BLOB NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	delivered       INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1)),
	failed          INTEGER NOT NULL DEFAULT 0 CHECK (failed IN (0, 1)),
	next_attempt_at INTEGER NOT NULL,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	CHECK (NOT (delivered = 1 AND failed = 1))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered, failed, next_attempt_at);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

-- Every attempt of a delivery, as it happened.
CREATE TABLE webhook_attempts (
	delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
	attempt     INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	delivered   INTEGER NOT NULL CHECK (delivered IN (0, 1)),
	PRIMARY KEY (delivery_id, attempt)
);
