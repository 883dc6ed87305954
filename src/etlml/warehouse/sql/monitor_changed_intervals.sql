-- The intervals starting in [%(since)s, %(until)s) whose labels changed after their monitoring rows
-- were computed (labels.updated_at > model_performance.computed_at), or that hold labels but were
-- never monitored: what 30_monitor's time-scheduled run recomputes. Oldest first.
WITH computed AS (
    SELECT interval_start, min(computed_at) AS computed_at
    FROM model_performance
    WHERE interval_start >= %(since)s AND interval_start < %(until)s
    GROUP BY interval_start
)
SELECT l.interval_start, l.interval_end
FROM labels AS l
LEFT JOIN computed AS c USING (interval_start)
WHERE l.interval_start >= %(since)s AND l.interval_start < %(until)s
  AND (c.computed_at IS NULL OR l.updated_at > c.computed_at)
GROUP BY l.interval_start, l.interval_end
ORDER BY l.interval_start;
