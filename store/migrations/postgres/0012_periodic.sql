-- Periodic work that must run once in a cluster, not once per daemon (the
-- retention sweep): the daemon that moves next_at forward takes the turn.
CREATE TABLE periodic (
	name    TEXT PRIMARY KEY,
	next_at BIGINT NOT NULL,
	holder  TEXT NOT NULL DEFAULT ''
);
