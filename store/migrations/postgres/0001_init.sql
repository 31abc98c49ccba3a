-- The first schema of the daemon's state, for PostgreSQL: the same tables,
-- columns and rules as SQLite's 0001_init.sql. Times are BIGINT unix
-- nanoseconds (UTC); credits are BIGINT thousandths of a credit.

CREATE TABLE keys (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	prefix         TEXT NOT NULL,
	secret_hash    BYTEA NOT NULL UNIQUE,
	balance_milli  BIGINT NOT NULL CHECK (balance_milli >= 0),
	webhook_secret TEXT NOT NULL,
	created_at     BIGINT NOT NULL,
	revoked_at     BIGINT
);
CREATE INDEX keys_prefix ON keys (prefix);

CREATE TABLE uploads (
	id           TEXT PRIMARY KEY,
	key_id       TEXT NOT NULL REFERENCES keys (id),
	filename     TEXT NOT NULL,
	path         TEXT NOT NULL,
	size         BIGINT NOT NULL CHECK (size >= 0),
	duration_sec DOUBLE PRECISION NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	fps          DOUBLE PRECISION NOT NULL,
	has_audio    BOOLEAN NOT NULL,
	created_at   BIGINT NOT NULL
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
	background            TEXT NOT NULL,
	background_image_path TEXT NOT NULL DEFAULT '',
	composition           TEXT,
	webhook_url           TEXT NOT NULL DEFAULT '',
	metadata              TEXT,
	duration_sec          DOUBLE PRECISION NOT NULL DEFAULT 0,
	frames_total          BIGINT NOT NULL DEFAULT 0 CHECK (frames_total >= 0),
	frames_done           BIGINT NOT NULL DEFAULT 0 CHECK (frames_done >= 0),
	credits_milli         BIGINT NOT NULL DEFAULT 0 CHECK (credits_milli >= 0),
	billing_status        TEXT NOT NULL CHECK (billing_status IN ('none', 'reserved', 'charged', 'refunded')),
	attempts              INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	worker                TEXT NOT NULL DEFAULT '',
	request_id            TEXT NOT NULL DEFAULT '',
	created_at            BIGINT NOT NULL,
	queued_at             BIGINT,
	started_at            BIGINT,
	completed_at          BIGINT,
	updated_at            BIGINT NOT NULL
);
CREATE INDEX jobs_key_created ON jobs (key_id, created_at, id);
CREATE INDEX jobs_queue ON jobs (status, queued_at, created_at, id);

CREATE TABLE job_transitions (
	seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job_id      TEXT NOT NULL REFERENCES jobs (id),
	from_status TEXT NOT NULL,
	to_status   TEXT NOT NULL,
	cause       TEXT NOT NULL,
	request_id  TEXT NOT NULL DEFAULT '',
	at          BIGINT NOT NULL
);
CREATE INDEX job_transitions_job ON job_transitions (job_id, seq);

CREATE TABLE ledger (
	seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id            TEXT NOT NULL UNIQUE,
	key_id        TEXT NOT NULL REFERENCES keys (id),
	type          TEXT NOT NULL CHECK (type IN ('grant', 'reserve', 'charge', 'refund')),
	job_id        TEXT REFERENCES jobs (id),
	credits_milli BIGINT NOT NULL CHECK (credits_milli >= 0),
	seconds       DOUBLE PRECISION NOT NULL DEFAULT 0,
	model         TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL,
	UNIQUE (job_id, type),
	CHECK ((type = 'grant') = (job_id IS NULL))
);
CREATE INDEX ledger_key_created ON ledger (key_id, created_at);

-- A job's reservation ends either charged or refunded, never both (the
-- partial unique index), and nothing ends that was not reserved (the
-- trigger).
CREATE UNIQUE INDEX ledger_settle_once ON ledger (job_id) WHERE type IN ('charge', 'refund');
CREATE FUNCTION ledger_settles_a_reservation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM ledger WHERE job_id = NEW.job_id AND type = 'reserve') THEN
		RAISE EXCEPTION 'ledger: job has no reservation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER ledger_settles_a_reservation BEFORE INSERT ON ledger
FOR EACH ROW WHEN (NEW.type IN ('charge', 'refund')) EXECUTE FUNCTION ledger_settles_a_reservation();

CREATE TABLE idempotency (
	key_id       TEXT NOT NULL REFERENCES keys (id),
	key          TEXT NOT NULL,
	method       TEXT NOT NULL,
	path         TEXT NOT NULL,
	body_hash    TEXT NOT NULL,
	done         BOOLEAN NOT NULL DEFAULT FALSE,
	status       INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BYTEA,
	created_at   BIGINT NOT NULL,
	PRIMARY KEY (key_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE webhook_deliveries (
	id              TEXT PRIMARY KEY,
	job_id          TEXT NOT NULL REFERENCES jobs (id),
	key_id          TEXT NOT NULL REFERENCES keys (id),
	event           TEXT NOT NULL,
	url             TEXT NOT NULL,
	payload         BYTEA NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	delivered       BOOLEAN NOT NULL DEFAULT FALSE,
	failed          BOOLEAN NOT NULL DEFAULT FALSE,
	next_attempt_at BIGINT NOT NULL,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL,
	CHECK (NOT (delivered AND failed))
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (delivered, failed, next_attempt_at);
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

CREATE TABLE webhook_attempts (
	delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
	attempt     INTEGER NOT NULL,
	at          BIGINT NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	delivered   BOOLEAN NOT NULL,
	PRIMARY KEY (delivery_id, attempt)
);
