-- The append-only event store, its projections, and idempotency records.
CREATE TABLE event (
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       UUID    NOT NULL UNIQUE,
    stream_id      TEXT    NOT NULL,
    version        BIGINT  NOT NULL CHECK (version >= 1),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    entity         TEXT,
    payload        JSON    NOT NULL,
    metadata       JSON    NOT NULL,
    occurred_at_ms BIGINT  NOT NULL,
    recorded_at_ms BIGINT  NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX event_entity ON event (entity) WHERE entity IS NOT NULL;
CREATE INDEX event_stream_type ON event (stream_id, event_type, position);

-- Append-only, enforced by the database itself.
CREATE FUNCTION luna_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER event_no_update_or_delete BEFORE UPDATE OR DELETE ON event
    FOR EACH ROW EXECUTE FUNCTION luna_event_is_append_only();
CREATE TRIGGER event_no_truncate BEFORE TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION luna_event_is_append_only();

-- The summary projection, one row per stream, written in the same transaction as its events.
CREATE TABLE wallet (
    stream_id     TEXT   PRIMARY KEY,
    version       BIGINT NOT NULL,
    balance       BIGINT NOT NULL,
    summary       JSON   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

CREATE TABLE idempotency (
    key           TEXT    PRIMARY KEY,
    fingerprint   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    body          BYTEA   NOT NULL,
    created_at_ms BIGINT  NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at_ms);
