-- Accounts, sessions and login counters (ADR 0005: account, auth_session and refresh_history by
-- stream; account_email and login_throttle are directories keyed by email and bucket; setting is a
-- reference table).
CREATE TABLE account (
    stream_id     TEXT    PRIMARY KEY,
    email         TEXT    NOT NULL,
    name          TEXT,
    password_hash TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL
);

-- The normalised email (trimmed, Unicode-lowercased by the hub) is unique here.
CREATE TABLE account_email (
    email     TEXT PRIMARY KEY,
    stream_id TEXT NOT NULL
);

CREATE TABLE auth_session (
    stream_id     TEXT    NOT NULL,
    session_id    TEXT    NOT NULL,
    refresh_hash  TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    last_seen_ms  BIGINT  NOT NULL,
    expires_at_ms BIGINT  NOT NULL,
    revoked_at_ms BIGINT,
    user_agent    TEXT,
    address       TEXT    NOT NULL,
    PRIMARY KEY (stream_id, session_id)
);

-- Rotated refresh hashes of each session: presenting one again revokes the session.
CREATE TABLE refresh_history (
    stream_id    TEXT NOT NULL,
    refresh_hash TEXT NOT NULL,
    session_id   TEXT NOT NULL,
    PRIMARY KEY (stream_id, refresh_hash)
);

CREATE TABLE login_throttle (
    bucket        TEXT    PRIMARY KEY,
    count         INTEGER NOT NULL,
    expires_at_ms BIGINT  NOT NULL
);
CREATE INDEX login_throttle_expires ON login_throttle (expires_at_ms);

CREATE TABLE setting (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
