-- A mass send's link cards lead through short links of their own (tracked_links rows
-- made with the send), so that clicks count per send and per content item: the send
-- and the item a link was made for, NULL on the links staff make.
ALTER TABLE tracked_links ADD COLUMN broadcast_id BIGINT;
ALTER TABLE tracked_links ADD COLUMN content_id BIGINT;
CREATE INDEX tracked_links_by_content ON tracked_links (tenant_id, content_id)
    WHERE content_id IS NOT NULL;
