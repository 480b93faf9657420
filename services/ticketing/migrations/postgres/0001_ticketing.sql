-- Ticketing schema for PostgreSQL. Kept in step with ../sqlite, except keyword
-- search (a GIN-indexed tsvector on tickets here, a term table there).
CREATE TABLE customers (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- JSON arrays and objects.
    emails TEXT NOT NULL,
    phones TEXT NOT NULL,
    external_ids TEXT NOT NULL,
    language TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    organization TEXT NOT NULL,
    tier TEXT NOT NULL,
    vip BIGINT NOT NULL,
    notes TEXT NOT NULL,
    flag_kind BIGINT NOT NULL DEFAULT 0,
    flag_reason TEXT NOT NULL DEFAULT '',
    flag_by TEXT NOT NULL DEFAULT '',
    flag_at BIGINT,
    -- Lowercased name, emails, phones and external ids, for lookups.
    search_text TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX customers_by_created ON customers (tenant_id, created_at, id);

-- One customer per email address within a tenant.
CREATE TABLE customer_emails (
    tenant_id TEXT NOT NULL,
    email TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, email)
);

CREATE TABLE tickets (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    requester_id TEXT NOT NULL,
    assignee_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    priority BIGINT NOT NULL,
    channel BIGINT NOT NULL,
    status BIGINT NOT NULL,
    -- JSON: tags array, custom field values, external references.
    tags TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    external_refs TEXT NOT NULL,
    version BIGINT NOT NULL,
    -- Sequence number of the ticket's last event.
    event_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    solved_at BIGINT,
    closed_at BIGINT,
    merged_into_id TEXT NOT NULL,
    follow_up_of_id TEXT NOT NULL,
    -- Keyword search: search terms (helpdesk-text) separated by single spaces, all of them and
    -- those customers may match (not from internal notes), indexed as given, without re-parsing.
    terms_all TEXT NOT NULL DEFAULT '',
    terms_public TEXT NOT NULL DEFAULT '',
    search_all tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(terms_all, ' '))) STORED,
    search_public tsvector GENERATED ALWAYS AS (array_to_tsvector(string_to_array(terms_public, ' '))) STORED,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX tickets_by_created ON tickets (tenant_id, created_at, id);
CREATE INDEX tickets_by_updated ON tickets (tenant_id, updated_at, id);
CREATE INDEX tickets_by_status ON tickets (tenant_id, status, created_at);
CREATE INDEX tickets_by_assignee ON tickets (tenant_id, assignee_id, created_at);
CREATE INDEX tickets_by_requester ON tickets (tenant_id, requester_id, created_at);
CREATE INDEX tickets_by_group ON tickets (tenant_id, group_name, created_at);
CREATE INDEX tickets_search_all ON tickets USING GIN (search_all);
CREATE INDEX tickets_search_public ON tickets USING GIN (search_public);

CREATE TABLE ticket_tags (
    tenant_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, tag, ticket_id)
);

CREATE TABLE ticket_links (
    tenant_id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    other_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, ticket_id, other_id)
);

CREATE TABLE messages (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    author_kind BIGINT NOT NULL,
    author_id TEXT NOT NULL,
    visibility BIGINT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    attachments TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX messages_by_ticket ON messages (tenant_id, ticket_id, created_at, id);

CREATE TABLE ticket_changes (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL,
    actor_kind BIGINT NOT NULL,
    actor_id TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX ticket_changes_by_ticket ON ticket_changes (tenant_id, ticket_id, changed_at, id);

CREATE TABLE idempotency_keys (
    tenant_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    -- SHA-256 of the first request, so a reused key with another request is refused.
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, scope, idempotency_key)
);

CREATE TABLE saved_replies (
    tenant_id TEXT NOT NULL,
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE custom_fields (
    tenant_id TEXT NOT NULL,
    field_key TEXT NOT NULL,
    label TEXT NOT NULL,
    field_type BIGINT NOT NULL,
    options TEXT NOT NULL,
    required BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, field_key)
);

