-- The append-only event store, its projections, and idempotency records.
CREATE TABLE event (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    entity         TEXT,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX event_entity ON event (entity) WHERE entity IS NOT NULL;
CREATE INDEX event_stream_type ON event (stream_id, event_type, position);

-- Append-only, enforced by the database itself.
CREATE TRIGGER event_no_update BEFORE UPDATE ON event
BEGIN
    SELECT RAISE(ABORT, 'event is append-only');
END;
CREATE TRIGGER event_no_delete BEFORE DELETE ON event
BEGIN
    SELECT RAISE(ABORT, 'event is append-only');
END;

-- The summary projection, one row per stream, written in the same transaction as its events.
CREATE TABLE wallet (
    stream_id     TEXT    PRIMARY KEY,
    version       INTEGER NOT NULL,
    balance       INTEGER NOT NULL,
    summary       TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
);

CREATE TABLE idempotency (
    key           TEXT    PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          BLOB    NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);
