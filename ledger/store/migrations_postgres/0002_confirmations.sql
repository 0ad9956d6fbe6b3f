-- Finality, as in the SQLite store's migration 0005.
ALTER TABLE batches ADD COLUMN block_hash BYTEA;
ALTER TABLE batches ADD COLUMN confirmed SMALLINT NOT NULL DEFAULT 0;
UPDATE batches SET confirmed = 1 WHERE state = 'anchored';
CREATE INDEX batches_unconfirmed ON batches(id) WHERE state = 'anchored' AND confirmed = 0;
