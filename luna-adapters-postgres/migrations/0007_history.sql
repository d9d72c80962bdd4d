-- Derived history data written with each append, so that the history reads cost O(page) or
-- O(range), never O(history) (ADR 0007): one ledger row per energy event with the balances
-- around it, its rows summed per (stream, UTC day, kind, action, app) with the first and last
-- position of the day's rows, and the number of events per (stream, type). `luna verify`
-- checks all three against the events.
CREATE TABLE ledger (
    stream_id      TEXT    NOT NULL,
    position       BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    amount         BIGINT  NOT NULL,
    balance_before BIGINT  NOT NULL,
    balance_after  BIGINT  NOT NULL,
    occurred_at_ms BIGINT  NOT NULL,
    action         TEXT    NOT NULL,
    app            TEXT    NOT NULL,
    unlimited      BIGINT  NOT NULL,
    notional       BIGINT  NOT NULL,
    PRIMARY KEY (stream_id, position)
);

CREATE TABLE usage_daily (
    stream_id      TEXT    NOT NULL,
    day            BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    app            TEXT    NOT NULL,
    row_count      BIGINT  NOT NULL,
    energy         BIGINT  NOT NULL,
    unlimited      BIGINT  NOT NULL,
    notional       BIGINT  NOT NULL,
    first_position BIGINT  NOT NULL,
    last_position  BIGINT  NOT NULL,
    PRIMARY KEY (stream_id, day, kind, action, app)
);

CREATE TABLE event_count (
    stream_id  TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    n          BIGINT  NOT NULL,
    PRIMARY KEY (stream_id, event_type)
);
INSERT INTO event_count (stream_id, event_type, n)
    SELECT stream_id, event_type, COUNT(*) FROM event GROUP BY stream_id, event_type;

-- The ledger and rollups of events stored before this migration are built from the events
-- by the store when it opens (a fold needs the domain's rules), once: this row says whether.
CREATE TABLE history_backfill (done INTEGER NOT NULL);
INSERT INTO history_backfill (done) VALUES (0);
