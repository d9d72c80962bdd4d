-- Usage summed per span of 32 UTC days (span = day div 32, floored), written with each append
-- beside the daily rollups, so analytics over a long range sums one cell per key and span plus
-- the daily cells of at most two partial spans (ADR 0011), never every day of the history.
-- `luna verify` checks it against the events.
CREATE TABLE usage_span (
    stream_id TEXT    NOT NULL,
    span      INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    app       TEXT    NOT NULL,
    row_count INTEGER NOT NULL,
    energy    INTEGER NOT NULL,
    unlimited INTEGER NOT NULL,
    notional  INTEGER NOT NULL,
    PRIMARY KEY (stream_id, span, kind, action, app)
) WITHOUT ROWID;

-- The spans of the rollups kept so far (a store whose ledger is still to be built from its
-- events gets its spans with it, when it opens). `%` truncates: the floor of day / 32 is
-- (day - ((day % 32) + 32) % 32) / 32.
INSERT INTO usage_span (stream_id, span, kind, action, app, row_count, energy, unlimited, notional)
    SELECT stream_id, (day - ((day % 32) + 32) % 32) / 32, kind, action, app,
           SUM(row_count), SUM(energy), SUM(unlimited), SUM(notional)
    FROM usage_daily GROUP BY 1, 2, 3, 4, 5;
