-- The files that came with a ticket's description (its messages keep their own), and the
-- customers who follow the ticket besides its requester.
ALTER TABLE tickets ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tickets ADD COLUMN collaborator_ids TEXT NOT NULL DEFAULT '[]';
