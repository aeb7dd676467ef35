-- the ingest log: tracked events are answered for once they are in the log, and applied
-- to profiles afterwards in big groups (see src/ingest_log.rs). On SQLite the log is a
-- database file of its own (PATH.ingest), so that appending to it never waits for the
-- main file's single writer; what has been applied is recorded here, in the same
-- transaction as the profiles it changed, so an entry is applied exactly once.
-- (PostgreSQL keeps the log as a table and deletes entries as they are applied.)
CREATE TABLE ingest_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO ingest_applied (id, seq) VALUES (1, 0);
-- logged events that could not be applied (an entry that makes its group fail on its
-- own, or that cannot be read back), kept with the error instead of blocking the log
CREATE TABLE ingest_dead_letters (
    seq INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    payload TEXT NOT NULL,
    error TEXT NOT NULL,
    failed_at INTEGER NOT NULL
);
