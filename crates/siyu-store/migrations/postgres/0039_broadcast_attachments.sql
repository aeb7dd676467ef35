-- What a mass send carries beside its text: items of the content library as they were
-- when the send was made or last changed (JSON array), or NULL for none.
ALTER TABLE broadcasts ADD COLUMN attachments TEXT;
