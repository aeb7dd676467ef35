-- probe jobs record here, in the transaction that completes them, that they ran and on
-- which worker (see src/jobs/probe.rs): the proof that a job ran exactly once
CREATE TABLE job_probes (
    job_id INTEGER PRIMARY KEY,
    worker TEXT NOT NULL,
    ran_at INTEGER NOT NULL
);
-- recurring jobs (see src/jobs/schedules.rs): a five-field cron expression read on the
-- tenant's wall clock (the system's, tenant_id NULL, in UTC); next_run_at moves on in
-- the transaction that enqueues a run, so each run is enqueued once across nodes
CREATE TABLE job_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER REFERENCES tenants (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    cron TEXT NOT NULL,
    next_run_at INTEGER NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX job_schedules_name ON job_schedules (COALESCE(tenant_id, 0), name);
CREATE INDEX job_schedules_due ON job_schedules (next_run_at) WHERE enabled = 1;
-- finished jobs, for forgetting them after a while (the maintenance job)
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
