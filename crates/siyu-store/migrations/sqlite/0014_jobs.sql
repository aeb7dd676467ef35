-- the durable job queue (see src/jobs.rs): a job is enqueued in the transaction of the
-- change that asks for it, taken by a worker under a lease that heartbeats renew, and
-- tried again with backoff until it is done or dead. tenant_id is NULL for a job of
-- the system. Times are milliseconds since the epoch.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'done', 'dead', 'cancelled')),
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_until INTEGER,
    worker TEXT,
    last_error TEXT,
    unique_key TEXT,
    progress_done INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    progress_message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
-- while a job with a key is waiting or running, no second one of its kind has that key
CREATE UNIQUE INDEX jobs_live_unique_key ON jobs (kind, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('waiting', 'running');
-- claiming: the tenants with due jobs (a skip scan by tenant), then each tenant's next
-- jobs, highest priority first, then the oldest
CREATE INDEX jobs_waiting ON jobs (tenant_id, kind, priority DESC, run_at, id)
    WHERE state = 'waiting';
-- claiming again the jobs of a worker that died: running, with the lease run out
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE state = 'running';
-- a tenant's jobs, newest first, for the jobs list
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
