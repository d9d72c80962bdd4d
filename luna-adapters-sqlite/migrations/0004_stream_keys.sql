-- Every record belongs to a stream (ADR 0005): idempotency records are keyed by
-- (stream_id, key). Records written before keep the principal (the part of the key before the
-- first '|') as their stream; the hub looks a key up in the user's stream, then in the
-- principal's own, so they are still replayed until they are purged.
CREATE TABLE idempotency_by_stream (
    stream_id     TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_id, key)
);
INSERT INTO idempotency_by_stream (stream_id, key, fingerprint, status, body, created_at_ms)
    SELECT substr(key, 1, instr(key, '|') - 1), key, fingerprint, status, body, created_at_ms
    FROM idempotency;
DROP TABLE idempotency;
ALTER TABLE idempotency_by_stream RENAME TO idempotency;
CREATE INDEX idempotency_created ON idempotency (created_at_ms);

-- The stream of each entity a client names without its user (a reservation it commits or
-- releases, a payment the provider reports on): one keyed lookup, no search across streams.
CREATE TABLE entity_stream (
    entity    TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL
);
INSERT OR IGNORE INTO entity_stream (entity, stream_id)
    SELECT entity, stream_id FROM event
    WHERE event_type IN ('EnergyReserved', 'PackPurchased') AND entity IS NOT NULL
    ORDER BY position;
