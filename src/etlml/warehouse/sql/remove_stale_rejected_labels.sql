-- Rejected label records of this interval that the current run no longer rejected.
WITH stale AS (
    DELETE FROM rejected_labels AS r
    WHERE r.interval_start = %(interval_start)s
      AND r.interval_end = %(interval_end)s
      AND NOT EXISTS (
          SELECT 1 FROM stage_rejected_labels AS s
          WHERE s.source_file = r.source_file AND s.row_number = r.row_number
      )
    RETURNING 1
)
SELECT count(*), 0 FROM stale;
