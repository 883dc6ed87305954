-- The position in the source's log where a run's interval begins: for a Redis stream, the id of the
-- interval's first entry (NULL for other sources, and for an interval without entries). A rerun
-- that finds another first entry refuses to load: the range it would read is no longer complete.
ALTER TABLE run_audit ADD COLUMN first_entry_id text;
