-- The Provenance search pages through an organisation's sealed records in row order: this index
-- serves it without scanning other organisations' records. (A patient's are served by
-- records_patient, whose entries SQLite keeps in row-id order within each patient.)
CREATE INDEX records_sealed_by_organisation ON records(organisation_id, id) WHERE batch_id IS NOT NULL;
