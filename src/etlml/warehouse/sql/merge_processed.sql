-- Upsert the staged rows of one data interval; a row whose values did not change is left as it is,
-- so a rerun keeps created_at/updated_at and the table stays byte-identical.
WITH merged AS (
    INSERT INTO processed_data AS p (
        event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
        normalized_with, interval_start, interval_end
    )
    SELECT event_id, ts_utc, f1, f2, f3, f1_z, f2_z, f3_z, f1_imputed, f2_imputed, f3_imputed,
           %(normalized_with)s, %(interval_start)s, %(interval_end)s
    FROM stage_processed
    ON CONFLICT (event_id) DO UPDATE SET
        ts_utc = EXCLUDED.ts_utc,
        f1 = EXCLUDED.f1, f2 = EXCLUDED.f2, f3 = EXCLUDED.f3,
        f1_z = EXCLUDED.f1_z, f2_z = EXCLUDED.f2_z, f3_z = EXCLUDED.f3_z,
        f1_imputed = EXCLUDED.f1_imputed, f2_imputed = EXCLUDED.f2_imputed, f3_imputed = EXCLUDED.f3_imputed,
        normalized_with = EXCLUDED.normalized_with,
        interval_start = EXCLUDED.interval_start,
        interval_end = EXCLUDED.interval_end,
        updated_at = now()
    WHERE (p.ts_utc, p.f1, p.f2, p.f3, p.f1_z, p.f2_z, p.f3_z, p.f1_imputed, p.f2_imputed, p.f3_imputed,
           p.normalized_with, p.interval_start, p.interval_end)
        IS DISTINCT FROM
          (EXCLUDED.ts_utc, EXCLUDED.f1, EXCLUDED.f2, EXCLUDED.f3, EXCLUDED.f1_z, EXCLUDED.f2_z,
           EXCLUDED.f3_z, EXCLUDED.f1_imputed, EXCLUDED.f2_imputed, EXCLUDED.f3_imputed,
           EXCLUDED.normalized_with, EXCLUDED.interval_start, EXCLUDED.interval_end)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged;
