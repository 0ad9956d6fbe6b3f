-- CareLedger off-chain store, version 1.
-- Everything here is either derivable from the chain (batches, anchors) or is the off-chain half of
-- a record (salt, metadata) that must never go on chain. Times are unix seconds.

CREATE TABLE organisations (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    key_name      TEXT    NOT NULL UNIQUE,       -- keystore entry of its chain account
    address       TEXT    NOT NULL UNIQUE,       -- its chain account (holds ANCHORER_ROLE)
    emergency     INTEGER NOT NULL DEFAULT 0,    -- holds EMERGENCY_ROLE on the ConsentRegistry
    created_at    INTEGER NOT NULL
);

CREATE TABLE apps (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations(id),
    name            TEXT    NOT NULL,
    key_hash        BLOB    NOT NULL UNIQUE,     -- SHA-256 of the API key; the key itself is never stored
    key_prefix      TEXT    NOT NULL,            -- first characters, to tell keys apart in listings
    roles           TEXT    NOT NULL,            -- comma-separated: registrar, reader, admin, emergency
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);

CREATE TABLE batches (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations(id),
    root            BLOB    NOT NULL UNIQUE,
    leaf_count      INTEGER NOT NULL,
    leaves          BLOB    NOT NULL,            -- the leaves in tree-input order, 32 bytes each
    sealed_at       REAL    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('sealed', 'anchored')),
    tx_hash         BLOB,
    block_number    INTEGER,
    anchored_at     INTEGER,
    anchorer        TEXT,
    gas_used        INTEGER
);
CREATE INDEX batches_unanchored ON batches(id) WHERE state = 'sealed';

CREATE TABLE records (
    id              INTEGER PRIMARY KEY,
    record_id       TEXT    NOT NULL UNIQUE,     -- public id
    kind            TEXT    NOT NULL CHECK (kind IN ('record', 'audit')),
    organisation_id INTEGER NOT NULL REFERENCES organisations(id),
    app_id          INTEGER REFERENCES apps(id),
    digest          BLOB    NOT NULL,
    salt            BLOB    NOT NULL,
    leaf            BLOB    NOT NULL,
    patient         TEXT,
    content_type    TEXT,
    metadata        TEXT,                        -- JSON, off chain only
    created_at      REAL    NOT NULL,
    batch_id        INTEGER REFERENCES batches(id)
);
CREATE INDEX records_pending ON records(organisation_id, id) WHERE batch_id IS NULL;
CREATE INDEX records_digest ON records(digest);
CREATE INDEX records_leaf ON records(leaf);
CREATE INDEX records_batch ON records(batch_id);
CREATE INDEX records_patient ON records(patient) WHERE patient IS NOT NULL;

-- Amendments and retractions: sent on chain once the records involved are anchored.
CREATE TABLE record_changes (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL CHECK (kind IN ('amend', 'retract')),
    record_id       TEXT    NOT NULL REFERENCES records(record_id),
    replacement_id  TEXT    REFERENCES records(record_id),
    reason          TEXT,
    requested_at    REAL    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    tx_hash         BLOB,
    error           TEXT
);
CREATE UNIQUE INDEX record_changes_once ON record_changes(record_id, kind);
CREATE INDEX record_changes_pending ON record_changes(id) WHERE state = 'pending';

-- Every access attempt, allowed or denied; each is also a record of kind 'audit', anchored.
CREATE TABLE access_events (
    id              INTEGER PRIMARY KEY,
    record_id       TEXT    NOT NULL UNIQUE REFERENCES records(record_id),
    organisation_id INTEGER NOT NULL REFERENCES organisations(id),
    app_id          INTEGER NOT NULL REFERENCES apps(id),
    patient         TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    purpose         TEXT    NOT NULL,
    decision        TEXT    NOT NULL CHECK (decision IN ('allowed', 'denied', 'break_glass')),
    reason          TEXT,
    document        TEXT    NOT NULL,            -- the canonical JSON whose digest was anchored
    created_at      REAL    NOT NULL,
    chain_tx        BLOB                          -- the break-glass event's transaction
);
CREATE INDEX access_events_patient ON access_events(patient, id);
CREATE INDEX access_events_organisation ON access_events(organisation_id, id);

CREATE TABLE idempotency_keys (
    app_id          INTEGER NOT NULL REFERENCES apps(id),
    key             TEXT    NOT NULL,
    request_hash    BLOB    NOT NULL,
    status_code     INTEGER NOT NULL,
    response        BLOB    NOT NULL,
    created_at      REAL    NOT NULL,
    PRIMARY KEY (app_id, key)
);
