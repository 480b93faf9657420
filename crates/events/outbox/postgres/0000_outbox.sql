-- The transactional outbox every publishing service keeps beside its own tables: events commit
-- with the change that caused them, and the relay publishes and deletes them in position order.
-- IF NOT EXISTS: databases from before this file held the same table in their service's 0001.
CREATE TABLE IF NOT EXISTS outbox (
    position BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    payload BYTEA NOT NULL
);
