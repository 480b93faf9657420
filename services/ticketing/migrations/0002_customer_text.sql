-- What only a message's customer may read (a survey link is their credential); staff read
-- body_text, where it is redacted.
ALTER TABLE messages ADD COLUMN customer_text TEXT NOT NULL DEFAULT '';
