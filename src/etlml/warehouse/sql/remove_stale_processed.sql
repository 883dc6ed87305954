-- Rows of this interval that the current run no longer produced, and their predictions of every
-- model version (predictions has no foreign key to cascade; see migration 0001), in this interval's
-- partitions only.
WITH stale AS (
    DELETE FROM processed_data AS p
    WHERE p.interval_start = %(interval_start)s
      AND p.interval_end = %(interval_end)s
      AND NOT EXISTS (SELECT 1 FROM stage_processed AS s WHERE s.event_id = p.event_id)
    RETURNING p.event_id
), gone AS (
    DELETE FROM predictions AS pr USING stale
    WHERE pr.interval_start = %(interval_start)s AND pr.event_id = stale.event_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM gone);
