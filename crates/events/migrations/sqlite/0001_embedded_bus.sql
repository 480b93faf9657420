-- The embedded bus: every published event, kept until every durable consumer has processed it,
-- the consumers' positions, and the events a consumer gave up on. Kept in step with ../postgres.
CREATE TABLE bus_events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The event id, or `<event id>:replay:<n>` for a dead letter sent again. Not unique: a relay
    -- killed between storing a batch and deleting it from its outbox stores it again, and
    -- consumers de-duplicate by event id, as on JetStream past its window.
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Set on a replayed dead letter: only that consumer receives it.
    only_for TEXT,
    payload BLOB NOT NULL
);

CREATE TABLE bus_consumers (
    name TEXT PRIMARY KEY,
    -- Every event at or below this position has been processed by the consumer.
    position BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE bus_dead_letters (
    consumer TEXT NOT NULL,
    event_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload BLOB NOT NULL,
    error TEXT NOT NULL,
    failed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
