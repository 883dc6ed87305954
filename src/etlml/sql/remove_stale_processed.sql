-- Rows of this interval that the current run no longer produced; their predictions go with them.
DELETE FROM processed_data AS p
WHERE p.interval_start = %(interval_start)s
  AND p.interval_end = %(interval_end)s
  AND NOT EXISTS (SELECT 1 FROM stage_processed AS s WHERE s.event_id = p.event_id);
