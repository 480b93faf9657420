-- Feedback owns surveys, invitations, answers and follow-ups, and keeps the event history its
-- insight projections are built from. Timestamps are microseconds since the Unix epoch.

CREATE TABLE settings (
    tenant_id TEXT PRIMARY KEY,
    spec BLOB NOT NULL
);

-- The key survey links are signed with, made once and shared by every replica.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE surveys (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    spec BLOB NOT NULL,
    active BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE invitations (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    locale TEXT NOT NULL,
    channel BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    team TEXT NOT NULL,
    tags TEXT NOT NULL,
    state BIGINT NOT NULL,
    send_at BIGINT NOT NULL,
    sent_at BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, ticket_id, survey_id)
);
CREATE INDEX invitations_due ON invitations (state, send_at);
CREATE INDEX invitations_customer ON invitations (tenant_id, customer_id, created_at);

CREATE TABLE responses (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    invitation_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    survey_id TEXT NOT NULL,
    body BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    tags TEXT NOT NULL,
    unhappy BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, invitation_id)
);
CREATE INDEX responses_ticket ON responses (tenant_id, ticket_id);
CREATE INDEX responses_updated ON responses (tenant_id, updated_at);

-- Submission ids already recorded, so that a repeated submission records nothing new.
CREATE TABLE submissions (
    tenant_id TEXT NOT NULL,
    invitation_id TEXT NOT NULL,
    submission_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, invitation_id, submission_id)
);

CREATE TABLE follow_ups (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    body BLOB NOT NULL,
    state BIGINT NOT NULL,
    assignee_id TEXT NOT NULL,
    -- 0 until ticketing has the linked ticket, then 1; 2 when ticketing refused it.
    linked BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, response_id)
);
CREATE INDEX follow_ups_unlinked ON follow_ups (linked);

CREATE TABLE announcements (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- One message per respondent and announcement, delivered on their ticket.
CREATE TABLE notifications (
    tenant_id TEXT NOT NULL,
    announcement_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    body TEXT NOT NULL,
    -- 0 pending, 1 delivered, 2 undeliverable (the ticket is closed or gone).
    state BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, announcement_id, customer_id)
);
CREATE INDEX notifications_pending ON notifications (state);

-- Every event the projections use, once, in arrival order, without text the reports do not read.
CREATE TABLE event_log (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL
);
CREATE INDEX event_log_tenant ON event_log (tenant_id, position);

