-- The ticket's collaborators a reply is copied to (addresses separated by commas), besides its
-- recipient: the envelope names them all.
ALTER TABLE deliveries ADD COLUMN cc TEXT NOT NULL DEFAULT '';
