-- Email schema for PostgreSQL. Kept in step with ../sqlite, which has BLOB where this has BYTEA.

-- A mailbox's settings as its encoded protobuf, and its credentials encrypted (nonce, then
-- ciphertext) under the configured key.
CREATE TABLE mailboxes (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    spec BYTEA NOT NULL,
    secrets BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Every address mail is taken for, across tenants: the SMTP listener routes by it at RCPT time.
CREATE TABLE mailbox_addresses (
    address TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL
);
CREATE INDEX mailbox_addresses_mailbox ON mailbox_addresses (tenant_id, mailbox_id);

-- Every message received, stored before it is acknowledged; threaded into a ticket after.
-- `dedup_key` is NULL on the record of a duplicate, whose first delivery holds the message.
CREATE TABLE inbound_mail (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    source BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    dedup_key TEXT,
    raw BYTEA,
    outcome BIGINT NOT NULL,
    reason TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- Until when a worker holds it (microseconds); 0 when nobody does.
    claimed_until BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX inbound_mail_dedup ON inbound_mail (tenant_id, dedup_key);
CREATE INDEX inbound_mail_pending ON inbound_mail (claimed_until, received_at) WHERE outcome = 0;
CREATE INDEX inbound_mail_mailbox ON inbound_mail (tenant_id, mailbox_id, received_at);
CREATE INDEX inbound_mail_sender ON inbound_mail (tenant_id, sender, received_at);
CREATE INDEX inbound_mail_ticket ON inbound_mail (tenant_id, ticket_id, received_at);

-- What ties mail to a ticket: `id:<Message-ID>` of every message received or sent,
-- `outlook:<Thread-Index root>` and `token:<ticket token>`.
CREATE TABLE thread_keys (
    tenant_id TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, thread_key)
);
CREATE INDEX thread_keys_ticket ON thread_keys (tenant_id, ticket_id);

-- Agents' public replies on their way to customers, queued with the event that announced them
-- (one row per ticket message, so a redelivered event queues nothing twice).
CREATE TABLE deliveries (
    tenant_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    email_message_id TEXT NOT NULL,
    raw BYTEA NOT NULL,
    state BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    -- When the next attempt is due (microseconds); a worker that takes it moves it on by its lease.
    next_attempt_at BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    sent_at BIGINT,
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state IN (1, 3);
CREATE INDEX deliveries_ticket ON deliveries (tenant_id, ticket_id, queued_at);
CREATE INDEX deliveries_message_id ON deliveries (tenant_id, email_message_id);
