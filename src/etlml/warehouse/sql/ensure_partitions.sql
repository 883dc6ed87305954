-- The day partitions of processed_data, predictions and rejected_events from from's UTC day to to's
-- that were missing, now created (migration 0013; the function runs with the owner's rights).
SELECT etlml_ensure_partitions(%(from)s, %(to)s);
