-- As SQLite's 0010: secrets every daemon sharing the store agrees on.
CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BYTEA NOT NULL,
	created_at BIGINT NOT NULL
);
