-- claiming the system's jobs (tenant_id NULL) in order: jobs_waiting cannot give them
-- in (priority, run_at, id) order on PostgreSQL, which does not treat `IS NULL` as an
-- equality for ordering, so each claim sorted every due system job (24 ms with 20,000
-- waiting; 2 ms with this index)
CREATE INDEX jobs_waiting_system ON jobs (kind, priority DESC, run_at, id)
    WHERE state = 'waiting' AND tenant_id IS NULL;
