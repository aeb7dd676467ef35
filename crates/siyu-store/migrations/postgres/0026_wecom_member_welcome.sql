-- the welcome message sent when a customer adds this member (NULL: the connector's)
ALTER TABLE wecom_members ADD COLUMN welcome TEXT;
