-- One rule for record changes, as the contract and the API state it: a record is changed at most
-- once, amended or retracted, not both. The index of migration 0001 allowed one change of each kind.
DROP INDEX record_changes_once;
CREATE UNIQUE INDEX record_changes_once ON record_changes(record_id);
