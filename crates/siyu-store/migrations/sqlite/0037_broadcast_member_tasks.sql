-- Mass sends on WeCom, and templates in sends (src/engagement/broadcasts.rs,
-- broadcast_sends.rs, broadcast_tasks.rs): a send goes through one connector; a batch is one member's task
-- (one add_msg_template call) with WeCom's msgid once answered, where the member's
-- task stands, the reminders sent, and, when a lost call could not be told apart from
-- other messages, what a person must choose between; each recipient is reached through
-- one external_userid and has a status as WeCom reports it.

ALTER TABLE broadcasts ADD COLUMN connector_id INTEGER;
-- a send that renders a message template keeps it as it was made (JSON: id, name,
-- body, fallbacks); its text is the body
ALTER TABLE broadcasts ADD COLUMN template_id INTEGER;
ALTER TABLE broadcasts ADD COLUMN template TEXT;

ALTER TABLE broadcast_batches ADD COLUMN sender_userid TEXT;
ALTER TABLE broadcast_batches ADD COLUMN sender_staff_id INTEGER;
-- a member task's own text (a template rendered with the member's values)
ALTER TABLE broadcast_batches ADD COLUMN text TEXT;
ALTER TABLE broadcast_batches ADD COLUMN msgid TEXT;
-- waiting, confirmed, cancelled, member_left, failed, expired (NULL: not with WeCom)
ALTER TABLE broadcast_batches ADD COLUMN task_state TEXT;
ALTER TABLE broadcast_batches ADD COLUMN task_checked_at INTEGER;
ALTER TABLE broadcast_batches ADD COLUMN member_sent_at INTEGER;
-- JSON array of the times (ms) the member was reminded
ALTER TABLE broadcast_batches ADD COLUMN reminders TEXT NOT NULL DEFAULT '[]';
-- JSON {"msgids": [...], "reason": "..."}: set while the batch waits for a person
ALTER TABLE broadcast_batches ADD COLUMN unresolved TEXT;
-- reconciling reads the msgids siyu recorded, to leave them out
CREATE INDEX broadcast_batches_msgid ON broadcast_batches (tenant_id, msgid);
-- the frequency cap no longer reads answered batches by time
DROP INDEX broadcast_batches_answered;

ALTER TABLE broadcast_recipients ADD COLUMN external_userid TEXT;
-- planned, waiting, sent, not_friend, over_cap, refused, not_sent, member_left (NULL:
-- the sandbox's, sent with its batch)
ALTER TABLE broadcast_recipients ADD COLUMN status TEXT;
ALTER TABLE broadcast_recipients ADD COLUMN status_at INTEGER;

-- the sandbox's message to one customer, when it is not the delivery's text (a
-- template rendered for them)
ALTER TABLE sandbox_messages ADD COLUMN text TEXT;
