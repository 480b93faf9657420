-- Routing schema for SQLite. Kept in step with ../postgres. Configuration and work items are
-- stored as encoded protobuf messages: routing loads them whole into memory at start-up.
CREATE TABLE settings (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    spec BLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, kind, id)
);

CREATE TABLE presence (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    presence INTEGER NOT NULL,
    last_active_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, agent_id)
);

CREATE TABLE work_items (
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    open INTEGER NOT NULL,
    version BIGINT NOT NULL,
    item BLOB NOT NULL,
    sla BLOB,
    -- What ticketing should show (assignee, queue, priority) and what it was last told.
    desired TEXT NOT NULL,
    synced TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX work_items_open ON work_items (open) WHERE open = 1;
CREATE INDEX work_items_unsynced ON work_items (tenant_id, ticket_id) WHERE desired <> synced;

CREATE TABLE escalations (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    spec BLOB NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, ticket_id, occurrence)
);

-- Internal notes waiting to be written to their tickets.
CREATE TABLE ticket_notes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    body TEXT NOT NULL
);

