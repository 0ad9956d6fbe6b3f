-- Finality: an anchored batch's receipt is final once its block is `confirmations` blocks deep in the
-- canonical chain. Until then the batcher re-checks the anchoring transaction; if a reorganisation
-- removed it, the batch goes back to 'sealed' and is anchored again.
ALTER TABLE batches ADD COLUMN block_hash BLOB;
ALTER TABLE batches ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
UPDATE batches SET confirmed = 1 WHERE state = 'anchored';
CREATE INDEX batches_unconfirmed ON batches(id) WHERE state = 'anchored' AND confirmed = 0;
