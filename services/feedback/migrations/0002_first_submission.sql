-- The submission that first answered an invitation: a revision must carry the key derived from
-- it, which only that submitter was given, so nobody else holding the link can change the answer.
ALTER TABLE responses ADD COLUMN first_submission TEXT NOT NULL DEFAULT '';
