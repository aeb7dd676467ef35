-- the channel codes (渠道活码, by their `state`) each customer came through: an event's
-- `channel_code` property records one (a segment or tag rule can test them)
CREATE TABLE customer_channel_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    code TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    UNIQUE (tenant_id, customer_id, code)
);
-- codes lose the spaces at their ends, as ingestion does (trim takes only spaces)
INSERT INTO customer_channel_codes (tenant_id, customer_id, code, first_at)
SELECT tenant_id, customer_id, code, MIN(timestamp) FROM (
    SELECT tenant_id, customer_id, timestamp, trim(json_extract(properties, '$.channel_code'), ' ') AS code
    FROM events WHERE properties LIKE '%"channel_code"%'
        AND json_valid(properties) AND json_type(properties, '$.channel_code') = 'text'
)
WHERE code <> '' AND length(code) <= 128
GROUP BY tenant_id, customer_id, code;
