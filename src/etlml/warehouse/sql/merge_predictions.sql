-- Upsert one model version's predictions. Rows of other versions are never touched, and an
-- unchanged prediction keeps its predicted_at_utc and written_by_run.
WITH merged AS (
    INSERT INTO predictions AS p (interval_start, event_id, model_version, y_hat, ts_utc, written_by_run)
    SELECT interval_start, event_id, %(model_version)s, y_hat, ts_utc, %(written_by_run)s
    FROM stage_predictions
    ON CONFLICT (interval_start, event_id, model_version) DO UPDATE SET
        y_hat = EXCLUDED.y_hat,
        ts_utc = EXCLUDED.ts_utc,
        predicted_at_utc = now(),
        written_by_run = EXCLUDED.written_by_run
    WHERE (p.y_hat, p.ts_utc) IS DISTINCT FROM (EXCLUDED.y_hat, EXCLUDED.ts_utc)
    RETURNING p.interval_start, p.event_id
)
-- the statement's other parts see the table as it was before it: a returned row that was not there
-- is new (xmax = 0 cannot be read from a partitioned table)
SELECT count(*) FILTER (WHERE NOT stored), count(*) FILTER (WHERE stored)
FROM (
    SELECT EXISTS (SELECT 1 FROM predictions AS o
                   WHERE o.interval_start = m.interval_start AND o.event_id = m.event_id
                     AND o.model_version = %(model_version)s) AS stored
    FROM merged AS m
) AS marked;
