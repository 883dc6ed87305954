-- The etlml page: the champion's scores in the latest interval of the window that it scored, counted in
-- the bins of the score's reference profile (width_bucket over the profile's inner edges numbers the
-- bins 0..k, as etlml.features.profile does). No row when there is no champion, no such interval or
-- no reference profile. Events are found through processed_data's interval index, then their
-- predictions by primary key.
WITH champion AS (
    SELECT v.model_version, v.reference_profile -> 'score' -> 'edges' AS edges
    FROM model_aliases AS a
    JOIN model_versions AS v USING (model_version)
    WHERE a.alias = 'champion' AND v.reference_profile ? 'score'
),
latest AS (
    SELECT r.interval_start, r.interval_end
    FROM run_audit AS r, champion AS c
    WHERE r.dag_id = %(dag_id)s AND r.interval_start >= now() - %(window)s AND r.loaded > 0
      AND EXISTS (
          SELECT 1
          FROM processed_data AS d
          JOIN predictions AS p
            ON p.interval_start = d.interval_start AND p.event_id = d.event_id
           AND p.model_version = c.model_version
          WHERE d.interval_start = r.interval_start AND d.interval_end = r.interval_end
      )
    ORDER BY r.interval_start DESC
    LIMIT 1
),
edges AS (
    SELECT coalesce(array_agg(e.value::double precision ORDER BY e.ord), '{}') AS edges
    FROM champion AS c, jsonb_array_elements_text(c.edges) WITH ORDINALITY AS e (value, ord)
)
SELECT l.interval_start, l.interval_end, c.model_version, width_bucket(p.y_hat, edges.edges) AS bin,
       count(*) AS n
FROM latest AS l
CROSS JOIN champion AS c
CROSS JOIN edges
JOIN processed_data AS d ON d.interval_start = l.interval_start AND d.interval_end = l.interval_end
JOIN predictions AS p
  ON p.interval_start = d.interval_start AND p.event_id = d.event_id AND p.model_version = c.model_version
GROUP BY l.interval_start, l.interval_end, c.model_version, bin
ORDER BY bin;
