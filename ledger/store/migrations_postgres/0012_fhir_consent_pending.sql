-- A FHIR Consent is kept before its grant is relayed (state 'pending', with the signature it is to
-- be granted on), and completed with the grant's transaction once mined: a crash between the two
-- leaves a row the next touch completes from the chain (or drops once the signature's deadline has
-- passed with no grant on chain). One row per signed Consent: (terms, signature) is unique.
ALTER TABLE fhir_consents
    ADD COLUMN state TEXT NOT NULL DEFAULT 'granted' CHECK (state IN ('pending', 'granted')),
    ADD COLUMN signature BYTEA,                  -- the ConsentGrantSet signature (NULL if kept before 0012)
    ADD COLUMN deadline BIGINT,                  -- the signature's deadline, unix seconds
    ADD COLUMN from_block BIGINT,                -- the chain's head when kept pending: the grant is mined after it
    ALTER COLUMN grant_tx DROP NOT NULL,         -- set once mined
    ALTER COLUMN grant_block DROP NOT NULL,
    ADD CONSTRAINT fhir_consents_granted_has_grant
        CHECK (state = 'pending' OR (grant_tx IS NOT NULL AND grant_block IS NOT NULL)),
    ADD CONSTRAINT fhir_consents_pending_has_signature
        CHECK (state = 'granted' OR (signature IS NOT NULL AND deadline IS NOT NULL AND from_block IS NOT NULL));
DROP INDEX fhir_consents_patient;
DROP INDEX fhir_consents_grantee;
CREATE INDEX fhir_consents_patient ON fhir_consents(patient, created_at, id);
CREATE INDEX fhir_consents_grantee ON fhir_consents(grantee, created_at, id);
CREATE INDEX fhir_consents_state ON fhir_consents(state, created_at);
CREATE UNIQUE INDEX fhir_consents_signed ON fhir_consents(terms, signature);
