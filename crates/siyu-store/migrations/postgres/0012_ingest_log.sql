-- the ingest log: tracked events are answered for once they are in the log, and applied
-- to profiles afterwards in big groups (see src/ingest_log.rs). Appliers take entries
-- with FOR UPDATE SKIP LOCKED and delete them in the transaction that applies them, so
-- an entry is applied exactly once even with several server processes. (SQLite keeps
-- the log in a file of its own and records here, in ingest_applied, how far it got.)
CREATE TABLE ingest_log (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    source_id BIGINT NOT NULL,
    payload TEXT NOT NULL
);
-- logged events that could not be applied (an entry that makes its group fail on its
-- own, or that cannot be read back), kept with the error instead of blocking the log
CREATE TABLE ingest_dead_letters (
    seq BIGINT PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    source_id BIGINT NOT NULL,
    payload TEXT NOT NULL,
    error TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
