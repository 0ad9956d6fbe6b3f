-- The Provenance search pages through an organisation's (or a patient's) sealed records in row
-- order: these indexes serve both scopes without scanning other records.
CREATE INDEX records_sealed_by_organisation ON records(organisation_id, id) WHERE batch_id IS NOT NULL;
CREATE INDEX records_sealed_by_patient ON records(patient, id) WHERE batch_id IS NOT NULL AND patient IS NOT NULL;
