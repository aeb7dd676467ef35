-- A staff member's email is unique within their tenant, no longer across tenants: one
-- person may work for two brands, and one tenant's admin can no longer learn that an
-- address is staff of another by being refused it. Sign-in looks an email up in every
-- tenant (staff_email).
ALTER TABLE staff DROP CONSTRAINT staff_email_key;
ALTER TABLE staff ADD CONSTRAINT staff_tenant_email UNIQUE (tenant_id, email);
CREATE INDEX staff_email ON staff (email);
-- a password that fails for one account of an email while it opens another is counted
-- against that account
ALTER TABLE login_failures ADD COLUMN staff_id BIGINT;
CREATE INDEX login_failures_staff ON login_failures (staff_id, at);
