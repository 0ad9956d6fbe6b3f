-- As the SQLite store's migration 0008: a record is changed at most once (amended or retracted, not both).
DROP INDEX record_changes_once;
CREATE UNIQUE INDEX record_changes_once ON record_changes(record_id);
