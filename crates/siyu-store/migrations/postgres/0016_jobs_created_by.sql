-- who made a job: the staff member whose action enqueued it (NULL for the system, an API
-- token or the command line), so that staff whose data scope is their own customers or
-- their unit's see only the jobs of staff within it
ALTER TABLE jobs ADD COLUMN created_by_staff_id BIGINT;
-- such a caller's jobs list, newest first
CREATE INDEX jobs_created_by ON jobs (tenant_id, created_by_staff_id, id)
    WHERE created_by_staff_id IS NOT NULL;
