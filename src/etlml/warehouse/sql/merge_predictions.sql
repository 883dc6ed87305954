-- Upsert one model version's predictions. Rows of other versions are never touched, and an
-- unchanged prediction keeps its predicted_at_utc and written_by_run.
WITH merged AS (
    INSERT INTO predictions AS p (event_id, model_version, y_hat, ts_utc, written_by_run)
    SELECT event_id, %(model_version)s, y_hat, ts_utc, %(written_by_run)s
    FROM stage_predictions
    ON CONFLICT (event_id, model_version) DO UPDATE SET
        y_hat = EXCLUDED.y_hat,
        ts_utc = EXCLUDED.ts_utc,
        predicted_at_utc = now(),
        written_by_run = EXCLUDED.written_by_run
    WHERE (p.y_hat, p.ts_utc) IS DISTINCT FROM (EXCLUDED.y_hat, EXCLUDED.ts_utc)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged;
