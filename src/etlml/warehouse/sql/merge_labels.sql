-- Upsert the matched labels: the latest delivery wins. A stored label is overwritten by a delivery
-- from the same file (a rerun; a file replaced) or from a later one (code-point order of source_file,
-- i.e. a later partition), never by an earlier one; and by any file of the label interval that
-- delivered it (delivered_in), whose rerun replaces what it delivered (a corrected partition may hold
-- the label in an earlier file only). deliveries counts the files that delivered it, and a row
-- changes (written_by_run, updated_at = now()) only when a value or the file changes, so a rerun
-- leaves the table byte-identical.
WITH merged AS (
    INSERT INTO labels AS l (
        event_id, y_true, observed_at, interval_start, interval_end, source_file, written_by_run, delivered_in
    )
    SELECT event_id, y_true, observed_at, interval_start, interval_end, source_file, %(written_by_run)s,
           %(delivered_in)s
    FROM matched_labels
    ON CONFLICT (event_id) DO UPDATE SET
        y_true = EXCLUDED.y_true,
        observed_at = EXCLUDED.observed_at,
        interval_start = EXCLUDED.interval_start,
        interval_end = EXCLUDED.interval_end,
        source_file = EXCLUDED.source_file,
        written_by_run = EXCLUDED.written_by_run,
        delivered_in = EXCLUDED.delivered_in,
        deliveries = l.deliveries + (EXCLUDED.source_file <> l.source_file)::integer,
        updated_at = now()
    WHERE (EXCLUDED.source_file COLLATE "C" >= l.source_file COLLATE "C"
           OR l.delivered_in = EXCLUDED.delivered_in)
      AND (l.y_true, l.observed_at, l.interval_start, l.interval_end, l.source_file, l.delivered_in)
          IS DISTINCT FROM
          (EXCLUDED.y_true, EXCLUDED.observed_at, EXCLUDED.interval_start, EXCLUDED.interval_end,
           EXCLUDED.source_file, EXCLUDED.delivered_in)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged;
