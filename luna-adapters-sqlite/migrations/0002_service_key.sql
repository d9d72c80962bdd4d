-- Service keys: only the SHA-256 of the secret is stored.
CREATE TABLE service_key (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL UNIQUE,
    created_at_ms BIGINT  NOT NULL,
    revoked_at_ms BIGINT
);
