-- The FHIR version a record's document was validated as ('4.0' for R4, '5.0' for R5; the
-- fhirVersion parameter's major.minor). NULL for records that are no FHIR document (raw content, a
-- digest, plain JSON) and for records registered before versions were kept (all validated as R5).
ALTER TABLE records ADD COLUMN fhir_version TEXT;
