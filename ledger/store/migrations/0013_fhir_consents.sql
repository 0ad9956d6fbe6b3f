-- FHIR Consent resources of the /fhir/r4 facade (ledger/fhir). Each was granted on chain whole by the
-- patient's (or a guardian's) ConsentGrantSet signature over `terms`; its status is read from the
-- chain's consent events, never stored here.
CREATE TABLE fhir_consents (
    id              TEXT    PRIMARY KEY,         -- the Consent's logical id
    patient         TEXT    NOT NULL,            -- lower-case address
    grantee         TEXT    NOT NULL,            -- lower-case address of the IRCP Organization
    terms           BLOB    NOT NULL,            -- SHA-256 of `document`: the digest the patient signed
    document        TEXT    NOT NULL,            -- RFC 8785 form of the Consent without id, meta, status, signature
    version         INTEGER NOT NULL,            -- meta.versionId: 1 as granted, 2 once withdrawn through FHIR
    grant_tx        TEXT    NOT NULL,            -- 0x-hex of the grantSetBySig transaction
    grant_block     INTEGER NOT NULL,
    revoke_tx       TEXT,                        -- 0x-hex of the revokeSetBySig transaction, once withdrawn
    revoke_block    INTEGER,
    created_at      REAL    NOT NULL,
    updated_at      REAL    NOT NULL
);
CREATE INDEX fhir_consents_patient ON fhir_consents(patient, created_at);
CREATE INDEX fhir_consents_grantee ON fhir_consents(grantee, created_at);
