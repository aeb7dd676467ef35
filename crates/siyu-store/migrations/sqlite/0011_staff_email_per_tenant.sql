-- A staff member's email is unique within their tenant, no longer across tenants: one
-- person may work for two brands, and one tenant's admin can no longer learn that an
-- address is staff of another by being refused it. Sign-in looks an email up in every
-- tenant (staff_email).
--
-- SQLite cannot drop a column's UNIQUE, so the table is rebuilt. Migrations run in a
-- transaction, where foreign keys cannot be turned off, and dropping the old table
-- deletes its rows first, which cascades to sessions and saved views: those are kept
-- aside and put back, and the foreign keys are checked at commit.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE sessions_kept AS SELECT * FROM sessions;
CREATE TABLE saved_views_kept AS SELECT * FROM saved_views;
CREATE TABLE staff_rebuilt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    unit_id INTEGER NOT NULL,
    role_id INTEGER NOT NULL,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT,
    data_scope TEXT NOT NULL CHECK (data_scope IN ('own', 'unit_subtree', 'tenant')),
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_login_at INTEGER,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, email),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES units (tenant_id, id),
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id)
);
INSERT INTO staff_rebuilt (id, tenant_id, unit_id, role_id, email, name, password_hash,
    data_scope, status, created_at, updated_at, last_login_at)
SELECT id, tenant_id, unit_id, role_id, email, name, password_hash,
    data_scope, status, created_at, updated_at, last_login_at FROM staff;
-- ids keep counting on from the highest ever given (a deleted staff member's id is
-- never reused: notes and audit records still name it)
DELETE FROM sqlite_sequence WHERE name = 'staff_rebuilt';
INSERT INTO sqlite_sequence (name, seq) SELECT 'staff_rebuilt', seq FROM sqlite_sequence WHERE name = 'staff';
DROP TABLE staff;
ALTER TABLE staff_rebuilt RENAME TO staff;
CREATE INDEX staff_unit ON staff (tenant_id, unit_id);
CREATE INDEX staff_role ON staff (tenant_id, role_id);
CREATE INDEX staff_email ON staff (email);
INSERT INTO sessions SELECT * FROM sessions_kept;
INSERT INTO saved_views SELECT * FROM saved_views_kept;
DROP TABLE sessions_kept;
DROP TABLE saved_views_kept;
-- a password that fails for one account of an email while it opens another is counted
-- against that account
ALTER TABLE login_failures ADD COLUMN staff_id INTEGER;
CREATE INDEX login_failures_staff ON login_failures (staff_id, at);
