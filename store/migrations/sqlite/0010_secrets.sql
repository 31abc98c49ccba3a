-- Secrets every daemon sharing the store must agree on (the key that signs
-- output URLs), made once by whichever daemon asks first.
CREATE TABLE secrets (
	name       TEXT PRIMARY KEY,
	value      BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
