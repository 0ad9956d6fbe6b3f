-- An amendment or retraction sent on chain is final once `confirmations` blocks are on top of its
-- transaction; until then the batcher re-checks it and sends it again if a reorganisation removed it.
ALTER TABLE record_changes ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 0;
UPDATE record_changes SET confirmed = 1 WHERE state <> 'pending';
