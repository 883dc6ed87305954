-- Upsert the staged rejected label records of one label interval; an unchanged row keeps its
-- rejected_at and written_by_run, so a rerun leaves the table byte-identical.
WITH merged AS (
    INSERT INTO rejected_labels AS r (
        interval_start, interval_end, source_file, row_number, reason, message, event_id, raw, written_by_run
    )
    SELECT %(interval_start)s, %(interval_end)s, source_file, row_number, reason, message, event_id, raw,
           %(written_by_run)s
    FROM stage_rejected_labels
    ON CONFLICT (interval_start, interval_end, source_file, row_number) DO UPDATE SET
        reason = EXCLUDED.reason,
        message = EXCLUDED.message,
        event_id = EXCLUDED.event_id,
        raw = EXCLUDED.raw,
        written_by_run = EXCLUDED.written_by_run,
        rejected_at = now()
    WHERE (r.reason, r.message, r.event_id, r.raw) IS DISTINCT FROM
          (EXCLUDED.reason, EXCLUDED.message, EXCLUDED.event_id, EXCLUDED.raw)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged;
