-- Find a record's amendment and retraction in the chain index by its leaf, without a scan.
CREATE INDEX chain_events_changed_leaf
    ON chain_events(coalesce(json_extract(fields, '$.originalLeaf'), json_extract(fields, '$.leaf')))
    WHERE event IN ('RecordAmended', 'RecordRetracted');
