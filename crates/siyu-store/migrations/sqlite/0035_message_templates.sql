-- Message templates (src/engagement/templates.rs): a text in Jinja syntax with a
-- fallback for every variable it names (JSON object, path to text). Deleted ones are
-- kept (deleted_at) for the mass sends that used them; names are unique among the live.

CREATE TABLE message_templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    fallbacks TEXT NOT NULL,
    created_by_staff_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX message_templates_live_name ON message_templates (tenant_id, name)
    WHERE deleted_at IS NULL;
