-- Where fetching each IMAP mailbox stands, and which replica holds it: one row per mailbox with
-- IMAP settings. A replica fetches a mailbox while it holds the lease (`holder` until
-- `lease_until`, microseconds, renewed as it fetches); another takes it over once it lapses.
CREATE TABLE imap_state (
    tenant_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    holder TEXT NOT NULL,
    lease_until BIGINT NOT NULL,
    -- The folder's UIDVALIDITY when its UIDs were last read, and the highest UID stored: fetching
    -- resumes after it, and starts over when the folder's UIDVALIDITY changes.
    uid_validity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL,
    messages_fetched BIGINT NOT NULL,
    -- The last pass that reached the end of the folder, and the error of the last pass that
    -- failed since ('' when none did).
    last_fetched_at BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    last_error_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, mailbox_id)
);
CREATE INDEX imap_state_lease ON imap_state (lease_until);
