-- The intervals of the events whose labels this label run stores or withdraws, oldest first: what its
-- `labels` asset event names, so that 30_monitor computes them. Those of the matched labels that no
-- stored later delivery of another label interval supersedes (older_labels.sql), and those of the
-- labels this label interval delivered before and no longer does. Read before the merge and the
-- removal (merge_labels.sql, remove_withdrawn_labels.sql), under the label interval's lock.
SELECT m.interval_start, m.interval_end
FROM matched_labels AS m
WHERE NOT EXISTS (
    SELECT 1 FROM labels AS l
    WHERE l.event_id = m.event_id
      AND m.source_file COLLATE "C" < l.source_file COLLATE "C"
      AND l.delivered_in IS DISTINCT FROM %(delivered_in)s
)
UNION
SELECT l.interval_start, l.interval_end
FROM labels AS l
WHERE l.delivered_in = %(delivered_in)s
  AND NOT EXISTS (SELECT 1 FROM stage_labels AS s WHERE s.event_id = l.event_id)
ORDER BY interval_start;
