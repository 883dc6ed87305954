-- Upsert the staged rejected records of one data interval; an unchanged row keeps its rejected_at
-- and written_by_run, so a rerun leaves the table byte-identical.
WITH merged AS (
    INSERT INTO rejected_events AS r (
        interval_start, interval_end, source_file, row_number, reason, message, event_id, raw, written_by_run
    )
    SELECT %(interval_start)s, %(interval_end)s, source_file, row_number, reason, message, event_id, raw,
           %(written_by_run)s
    FROM stage_rejected
    ON CONFLICT (interval_start, interval_end, source_file, row_number) DO UPDATE SET
        reason = EXCLUDED.reason,
        message = EXCLUDED.message,
        event_id = EXCLUDED.event_id,
        raw = EXCLUDED.raw,
        written_by_run = EXCLUDED.written_by_run,
        rejected_at = now()
    WHERE (r.reason, r.message, r.event_id, r.raw) IS DISTINCT FROM
          (EXCLUDED.reason, EXCLUDED.message, EXCLUDED.event_id, EXCLUDED.raw)
    RETURNING r.source_file, r.row_number
)
-- the statement's other parts see the table as it was before it: a returned row that was not there
-- is new (xmax = 0 cannot be read from a partitioned table)
SELECT count(*) FILTER (WHERE NOT stored), count(*) FILTER (WHERE stored)
FROM (
    SELECT EXISTS (SELECT 1 FROM rejected_events AS o
                   WHERE o.interval_start = %(interval_start)s AND o.interval_end = %(interval_end)s
                     AND o.source_file = m.source_file AND o.row_number = m.row_number) AS stored
    FROM merged AS m
) AS marked;
