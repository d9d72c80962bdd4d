-- Billing records beside the streams (ADR 0005): processed provider events, customer links,
-- open subscription checkouts (by stream), the customer directory and unmatched payments
-- (directories keyed by the provider's ids).
CREATE TABLE webhook_event (
    stream_id       TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    processed_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (stream_id, event_id)
);

CREATE TABLE billing_customer (
    stream_id   TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL
);

CREATE TABLE customer_stream (
    customer_id TEXT PRIMARY KEY,
    stream_id   TEXT NOT NULL
);

CREATE TABLE billing_checkout (
    stream_id     TEXT    PRIMARY KEY,
    checkout_id   TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);

CREATE TABLE unmatched_payment (
    payment_ref  TEXT    PRIMARY KEY,
    reason       TEXT    NOT NULL,
    amount_cents BIGINT  NOT NULL,
    currency     TEXT    NOT NULL,
    user_id      TEXT,
    pack         TEXT,
    seen_at_ms   BIGINT  NOT NULL
);
CREATE INDEX unmatched_payment_seen ON unmatched_payment (seen_at_ms);
