-- A FHIR Consent is kept before its grant is relayed (state 'pending', with the signature it is to
-- be granted on), and completed with the grant's transaction once mined: a crash between the two
-- leaves a row the next touch completes from the chain (or drops once the signature's deadline has
-- passed with no grant on chain). One row per signed Consent: (terms, signature) is unique.
-- SQLite cannot drop a NOT NULL, so the table is rebuilt (the indexes with it).
CREATE TABLE fhir_consents_0014 (
    id              TEXT    PRIMARY KEY,         -- the Consent's logical id
    patient         TEXT    NOT NULL,            -- lower-case address
    grantee         TEXT    NOT NULL,            -- lower-case address of the IRCP Organization
    terms           BLOB    NOT NULL,            -- SHA-256 of `document`: the digest the patient signed
    document        TEXT    NOT NULL,            -- RFC 8785 form of the Consent without id, meta, status, signature
    version         INTEGER NOT NULL,            -- meta.versionId: 1 as granted, 2 once withdrawn through FHIR
    state           TEXT    NOT NULL DEFAULT 'granted' CHECK (state IN ('pending', 'granted')),
    signature       BLOB,                        -- the ConsentGrantSet signature (NULL if kept before 0014)
    deadline        INTEGER,                     -- the signature's deadline, unix seconds
    from_block      INTEGER,                     -- the chain's head when kept pending: the grant is mined after it
    grant_tx        TEXT,                        -- 0x-hex of the grantSetBySig transaction, once mined
    grant_block     INTEGER,
    revoke_tx       TEXT,                        -- 0x-hex of the revokeSetBySig transaction, once withdrawn
    revoke_block    INTEGER,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL,
    CHECK (state = 'pending' OR (grant_tx IS NOT NULL AND grant_block IS NOT NULL)),
    CHECK (state = 'granted' OR (signature IS NOT NULL AND deadline IS NOT NULL AND from_block IS NOT NULL))
);
INSERT INTO fhir_consents_0014 (
    id, patient, grantee, terms, document, version, state, grant_tx, grant_block, revoke_tx, revoke_block,
    created_at, updated_at
)
SELECT id, patient, grantee, terms, document, version, 'granted', grant_tx, grant_block, revoke_tx, revoke_block,
    created_at, updated_at
FROM fhir_consents;
DROP TABLE fhir_consents;
ALTER TABLE fhir_consents_0014 RENAME TO fhir_consents;
CREATE INDEX fhir_consents_patient ON fhir_consents(patient, created_at, id);
CREATE INDEX fhir_consents_grantee ON fhir_consents(grantee, created_at, id);
CREATE INDEX fhir_consents_state ON fhir_consents(state, created_at);
CREATE UNIQUE INDEX fhir_consents_signed ON fhir_consents(terms, signature);
