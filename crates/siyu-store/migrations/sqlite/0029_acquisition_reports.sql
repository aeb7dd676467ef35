-- Acquisition reports (src/acquisition/rollup.rs, reports.rs): figures kept per day as
-- they happen, so that a report over a year of a thousand codes sums a few hundred
-- thousand small rows instead of joining millions of adds to orders. A day is the
-- tenant's local day (days since 1970-01-01 in its time zone when written). Code 0 is
-- "unknown code": adds whose state no live code has.

-- a code's figures per day: landing page scans (crawler fetches apart), adds through
-- it, relations it brought that were deleted (by the customer, by the member), the
-- customers it brought first (first touch) and, of those, who placed a first order
-- within the window after the add and their GMV (counted on the day of the add)
CREATE TABLE channel_code_days (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    code_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    scans INTEGER NOT NULL DEFAULT 0,
    crawler_fetches INTEGER NOT NULL DEFAULT 0,
    adds INTEGER NOT NULL DEFAULT 0,
    deleted_by_customer INTEGER NOT NULL DEFAULT 0,
    deleted_by_member INTEGER NOT NULL DEFAULT 0,
    customers INTEGER NOT NULL DEFAULT 0,
    first_orders INTEGER NOT NULL DEFAULT 0,
    gmv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, code_id)
);

-- the same per member (whoever the adds through codes went to; scans are the code's,
-- not a member's, and stay 0: the columns match so that one statement writes both)
CREATE TABLE channel_member_days (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    staff_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    scans INTEGER NOT NULL DEFAULT 0,
    crawler_fetches INTEGER NOT NULL DEFAULT 0,
    adds INTEGER NOT NULL DEFAULT 0,
    deleted_by_customer INTEGER NOT NULL DEFAULT 0,
    deleted_by_member INTEGER NOT NULL DEFAULT 0,
    customers INTEGER NOT NULL DEFAULT 0,
    first_orders INTEGER NOT NULL DEFAULT 0,
    gmv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, staff_id)
);

-- the code (and member) that first brought each customer, and what the customer
-- ordered within the window after that add (kept current as their orders change)
CREATE TABLE channel_first_touch (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    customer_id INTEGER NOT NULL,
    code_id INTEGER NOT NULL,
    staff_id INTEGER,
    added_at INTEGER NOT NULL,
    day INTEGER NOT NULL,
    first_order_at INTEGER,
    gmv INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, customer_id)
);
