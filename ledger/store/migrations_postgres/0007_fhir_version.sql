-- As the SQLite store's migration 0009: the FHIR version a record's document was validated as
-- ('4.0', '5.0'), NULL when it is no FHIR document or was registered before versions were kept.
ALTER TABLE records ADD COLUMN fhir_version TEXT;
