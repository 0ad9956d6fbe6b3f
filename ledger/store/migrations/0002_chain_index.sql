-- CareLedger off-chain store, version 2: an index of the contracts' events.
-- Everything here is derived from the chain and can be dropped and rebuilt from it
-- (`careledger rebuild-index`); nothing else in the store refers to it.

-- One row per event log of the ConsentRegistry or the RecordAnchor, in chain order.
CREATE TABLE chain_events (
    block_number    INTEGER NOT NULL,
    log_index       INTEGER NOT NULL,
    tx_hash         TEXT    NOT NULL,            -- 0x-hex
    contract        TEXT    NOT NULL CHECK (contract IN ('ConsentRegistry', 'RecordAnchor')),
    event           TEXT    NOT NULL,            -- ConsentGranted, RootAnchored, ...
    patient         TEXT,                        -- lower-case address; NULL for RecordAnchor events
    fields          TEXT    NOT NULL,            -- JSON: the other arguments, codes decoded, bytes as 0x-hex
    block_time      INTEGER NOT NULL,            -- the block's timestamp (unix seconds)
    PRIMARY KEY (block_number, log_index)
) WITHOUT ROWID;
CREATE INDEX chain_events_patient ON chain_events(patient, block_number, log_index) WHERE patient IS NOT NULL;

-- How far the index has read: the newest block whose events are all in chain_events.
CREATE TABLE chain_index_state (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_block      INTEGER NOT NULL,
    updated_at      REAL    NOT NULL
);
