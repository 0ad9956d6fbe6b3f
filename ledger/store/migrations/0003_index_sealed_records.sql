-- Index digests, leaves and patients only once a record is sealed into a batch. Acknowledging a
-- record then appends to indexes on increasing keys only (row id, public id, pending queue); the
-- random inserts into the 32-byte-key indexes happen in the batcher, off the request path.
DROP INDEX records_digest;
DROP INDEX records_leaf;
DROP INDEX records_patient;
CREATE INDEX records_digest ON records(digest) WHERE batch_id IS NOT NULL;
CREATE INDEX records_leaf ON records(leaf) WHERE batch_id IS NOT NULL;
CREATE INDEX records_patient ON records(patient) WHERE batch_id IS NOT NULL AND patient IS NOT NULL;
