-- Upsert the staged rows of one data interval, in the transaction that loads it.
--   * A row whose values did not change is left as it is, so a rerun keeps created_at/updated_at
--     and the table stays byte-identical.
--   * A changed row is updated, and its id goes to stage_changed: writes.upsert_processed then
--     deletes its predictions of every model version (delete_outdated_predictions.sql), so no
--     prediction outlives the features it was computed from (store_predictions writes new ones).
--   * An event id another interval holds (stage_redelivered, filled just before from the dedup
--     window) is never moved nor stored twice: the first stored delivery wins, and load_processed
--     quarantines the record as 'redelivered'.
-- The key (interval_start, event_id) confines every conflict to this interval's partition.
WITH merged AS (
    INSERT INTO processed_data AS p (
        event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
        normalized_with, interval_start, interval_end
    )
    SELECT s.event_id, s.ts_utc, s.f1, s.f2, s.f3, s.f1_z, s.f2_z, s.f3_z, s.f1_imputed, s.f2_imputed,
           s.f3_imputed, %(normalized_with)s, %(interval_start)s, %(interval_end)s
    FROM stage_processed AS s
    WHERE NOT EXISTS (SELECT 1 FROM stage_redelivered AS r WHERE r.event_id = s.event_id)
    ON CONFLICT (interval_start, event_id) DO UPDATE SET
        ts_utc = EXCLUDED.ts_utc,
        f1 = EXCLUDED.f1,
        f2 = EXCLUDED.f2,
        f3 = EXCLUDED.f3,
        f1_z = EXCLUDED.f1_z,
        f2_z = EXCLUDED.f2_z,
        f3_z = EXCLUDED.f3_z,
        f1_imputed = EXCLUDED.f1_imputed,
        f2_imputed = EXCLUDED.f2_imputed,
        f3_imputed = EXCLUDED.f3_imputed,
        normalized_with = EXCLUDED.normalized_with,
        updated_at = now()
    WHERE (p.ts_utc, p.f1, p.f2, p.f3, p.f1_z, p.f2_z, p.f3_z, p.f1_imputed, p.f2_imputed, p.f3_imputed,
           p.normalized_with)
          IS DISTINCT FROM
          (EXCLUDED.ts_utc, EXCLUDED.f1, EXCLUDED.f2, EXCLUDED.f3, EXCLUDED.f1_z, EXCLUDED.f2_z,
           EXCLUDED.f3_z, EXCLUDED.f1_imputed, EXCLUDED.f2_imputed, EXCLUDED.f3_imputed,
           EXCLUDED.normalized_with)
    RETURNING p.event_id
), marked AS (
    -- the statement's other parts see the table as it was before it: a returned row that was not
    -- there is new (xmax = 0 cannot be read from a partitioned table)
    SELECT m.event_id,
           NOT EXISTS (SELECT 1 FROM processed_data AS o
                       WHERE o.interval_start = %(interval_start)s AND o.event_id = m.event_id) AS inserted
    FROM merged AS m
), changed AS (
    INSERT INTO stage_changed (event_id)
    SELECT event_id FROM marked WHERE NOT inserted
    RETURNING 1
)
SELECT count(*) FILTER (WHERE inserted),
       count(*) FILTER (WHERE NOT inserted),
       (SELECT count(*) FROM stage_redelivered),
       (SELECT count(*) FROM changed)
FROM marked;
