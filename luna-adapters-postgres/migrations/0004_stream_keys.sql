-- Ready for a store distributed by stream (ADR 0005): every unique key of a table distributed
-- by stream_id includes stream_id; lookups by an id a client hands back go through a table
-- keyed by that id.

-- event: keyed by (stream_id, version); positions stay a global, increasing identity.
ALTER TABLE event DROP CONSTRAINT event_pkey;
ALTER TABLE event DROP CONSTRAINT event_event_id_key;
ALTER TABLE event DROP CONSTRAINT event_stream_id_version_key;
ALTER TABLE event ADD PRIMARY KEY (stream_id, version);
CREATE UNIQUE INDEX event_stream_event_id ON event (stream_id, event_id);
CREATE UNIQUE INDEX event_stream_position ON event (stream_id, position);
CREATE INDEX event_position ON event (position);
DROP INDEX event_entity;
CREATE INDEX event_stream_entity ON event (stream_id, entity) WHERE entity IS NOT NULL;

-- Idempotency records belong to a stream. Records written before keep the principal (the part
-- of the key before the first '|') as their stream; the hub looks a key up in the user's
-- stream, then in the principal's own, so they are still replayed until they are purged.
ALTER TABLE idempotency ADD COLUMN stream_id TEXT;
UPDATE idempotency SET stream_id = split_part(key, '|', 1);
ALTER TABLE idempotency ALTER COLUMN stream_id SET NOT NULL;
ALTER TABLE idempotency DROP CONSTRAINT idempotency_pkey;
ALTER TABLE idempotency ADD PRIMARY KEY (stream_id, key);

-- The stream of each entity a client names without its user (a reservation it commits or
-- releases, a payment the provider reports on), keyed (and distributed) by the entity.
CREATE TABLE entity_stream (
    entity    TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL
);
INSERT INTO entity_stream (entity, stream_id)
    SELECT DISTINCT ON (entity) entity, stream_id FROM event
    WHERE event_type IN ('EnergyReserved', 'PackPurchased') AND entity IS NOT NULL
    ORDER BY entity, position;
