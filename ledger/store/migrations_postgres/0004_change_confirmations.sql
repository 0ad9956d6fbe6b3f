-- As the SQLite store's migration 0006.
ALTER TABLE record_changes ADD COLUMN confirmed SMALLINT NOT NULL DEFAULT 0;
UPDATE record_changes SET confirmed = 1 WHERE state <> 'pending';
