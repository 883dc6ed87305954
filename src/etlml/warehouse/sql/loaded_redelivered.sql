-- After a straight COPY into an interval that held no rows: does another interval within the dedup
-- window hold one of the ids just loaded? (If so the load is undone and merged instead, which finds
-- and refuses them.) Probes the window's partitions through their event_id indexes.
SELECT EXISTS (
    SELECT 1
    FROM processed_data AS n
    JOIN processed_data AS p ON p.event_id = n.event_id
    WHERE n.interval_start = %(interval_start)s
      AND n.interval_end = %(interval_end)s
      AND p.interval_start >= %(window_start)s
      AND p.interval_start < %(window_end)s
      AND (p.interval_start, p.interval_end) <> (%(interval_start)s, %(interval_end)s)
);
