-- The staged events whose id processed_data holds under another interval that starts within the
-- dedup window [window_start, window_end) (ETLML_DEDUP_WINDOW_DAYS either side of this interval):
-- only those partitions are read, the window's ids once (a hash join with the staged ids: the key
-- leads with interval_start, so there is no index by event id alone). An id held only by an interval
-- outside the window is not found here, and is stored again (docs/partitions.md).
INSERT INTO stage_redelivered (event_id, held_start, held_end)
SELECT DISTINCT ON (s.event_id) s.event_id, p.interval_start, p.interval_end
FROM stage_processed AS s
JOIN processed_data AS p ON p.event_id = s.event_id
WHERE p.interval_start >= %(window_start)s
  AND p.interval_start < %(window_end)s
  AND (p.interval_start, p.interval_end) <> (%(interval_start)s, %(interval_end)s)
ORDER BY s.event_id, p.interval_start;
