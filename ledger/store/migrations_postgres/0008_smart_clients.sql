-- As the SQLite store's migration 0010: SMART Backend Services clients, used assertion ids, access tokens.
CREATE TABLE oauth_clients (
    app_id      BIGINT  PRIMARY KEY REFERENCES apps(id),
    client_id   TEXT    NOT NULL UNIQUE,
    jwks        TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE oauth_assertion_ids (
    client_id   TEXT    NOT NULL,
    jti         TEXT    NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertion_ids_expiry ON oauth_assertion_ids(expires_at);

CREATE TABLE oauth_access_tokens (
    token_hash  BYTEA   PRIMARY KEY,
    app_id      BIGINT  NOT NULL REFERENCES apps(id),
    scopes      TEXT    NOT NULL,
    issued_at   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX oauth_access_tokens_expiry ON oauth_access_tokens(expires_at);
CREATE INDEX oauth_access_tokens_app ON oauth_access_tokens(app_id);
