-- Upsert the staged rows of one data interval, in the transaction that loads it.
--   * A row whose values did not change is left as it is, so a rerun keeps created_at/updated_at
--     and the table stays byte-identical.
--   * A changed row is updated, and its id goes to stage_changed: writes.upsert_processed then
--     deletes its predictions of every model version (delete_outdated_predictions.sql), so no
--     prediction outlives the features it was computed from (store_predictions writes new ones).
--   * An event id that processed_data holds under another interval is never moved: the first
--     stored delivery wins. Its row is rewritten with its own values (so RETURNING reports it) and
--     its id goes to stage_redelivered with the interval that holds it; load_processed quarantines
--     the record as 'redelivered'.
WITH merged AS (
    INSERT INTO processed_data AS p (
        event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
        normalized_with, interval_start, interval_end
    )
    SELECT event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
           %(normalized_with)s, %(interval_start)s, %(interval_end)s
    FROM stage_processed
    ON CONFLICT (event_id) DO UPDATE SET
        ts_utc = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                 THEN EXCLUDED.ts_utc ELSE p.ts_utc END,
        f1 = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
             THEN EXCLUDED.f1 ELSE p.f1 END,
        f2 = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
             THEN EXCLUDED.f2 ELSE p.f2 END,
        f3 = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
             THEN EXCLUDED.f3 ELSE p.f3 END,
        f1_z = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
               THEN EXCLUDED.f1_z ELSE p.f1_z END,
        f2_z = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
               THEN EXCLUDED.f2_z ELSE p.f2_z END,
        f3_z = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
               THEN EXCLUDED.f3_z ELSE p.f3_z END,
        f1_imputed = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                     THEN EXCLUDED.f1_imputed ELSE p.f1_imputed END,
        f2_imputed = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                     THEN EXCLUDED.f2_imputed ELSE p.f2_imputed END,
        f3_imputed = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                     THEN EXCLUDED.f3_imputed ELSE p.f3_imputed END,
        normalized_with = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                          THEN EXCLUDED.normalized_with ELSE p.normalized_with END,
        updated_at = CASE WHEN (p.interval_start, p.interval_end) = (EXCLUDED.interval_start, EXCLUDED.interval_end)
                          THEN now() ELSE p.updated_at END
    WHERE (p.interval_start, p.interval_end) <> (EXCLUDED.interval_start, EXCLUDED.interval_end)
       OR (p.ts_utc, p.f1, p.f2, p.f3, p.f1_z, p.f2_z, p.f3_z, p.f1_imputed, p.f2_imputed, p.f3_imputed,
           p.normalized_with)
          IS DISTINCT FROM
          (EXCLUDED.ts_utc, EXCLUDED.f1, EXCLUDED.f2, EXCLUDED.f3, EXCLUDED.f1_z, EXCLUDED.f2_z,
           EXCLUDED.f3_z, EXCLUDED.f1_imputed, EXCLUDED.f2_imputed, EXCLUDED.f3_imputed,
           EXCLUDED.normalized_with)
    RETURNING p.event_id, p.interval_start, p.interval_end, (xmax = 0) AS inserted,
              (p.interval_start, p.interval_end) = (%(interval_start)s, %(interval_end)s) AS ours
), redelivered AS (
    INSERT INTO stage_redelivered (event_id, held_start, held_end)
    SELECT event_id, interval_start, interval_end FROM merged WHERE NOT ours
    RETURNING 1
), changed AS (
    INSERT INTO stage_changed (event_id)
    SELECT event_id FROM merged WHERE ours AND NOT inserted
    RETURNING 1
)
SELECT count(*) FILTER (WHERE ours AND inserted),
       count(*) FILTER (WHERE ours AND NOT inserted),
       (SELECT count(*) FROM redelivered),
       (SELECT count(*) FROM changed)
FROM merged;
