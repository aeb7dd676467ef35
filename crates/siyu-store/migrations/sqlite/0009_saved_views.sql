-- each staff member's saved views of a list (a search and a segment filter), by name
CREATE TABLE saved_views (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    staff_id INTEGER NOT NULL,
    list TEXT NOT NULL,
    name TEXT NOT NULL,
    q TEXT,
    filter TEXT,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, staff_id, list, name),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
