-- SMART Backend Services (ledger/oauth): an app's registered client (its public JWKS), the ids of
-- the client assertions it has used (each kept until that assertion could no longer be accepted),
-- and the access tokens issued to it (their SHA-256 only, as for API keys).
CREATE TABLE oauth_clients (
    app_id      INTEGER PRIMARY KEY REFERENCES apps(id),
    client_id   TEXT    NOT NULL UNIQUE,
    jwks        TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE oauth_assertion_ids (
    client_id   TEXT    NOT NULL,
    jti         TEXT    NOT NULL,
    expires_at  REAL    NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertion_ids_expiry ON oauth_assertion_ids(expires_at);

CREATE TABLE oauth_access_tokens (
    token_hash  BLOB    PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps(id),
    scopes      TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens(expires_at);
CREATE INDEX oauth_access_tokens_app ON oauth_access_tokens(app_id);
