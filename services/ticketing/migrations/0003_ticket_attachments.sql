-- The files that came with a ticket's description (its messages keep their own).
ALTER TABLE tickets ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
