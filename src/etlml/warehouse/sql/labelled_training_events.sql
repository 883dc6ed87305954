-- The labelled processed events of the intervals that start in [from, to): the raw features (NULL
-- where missing) and the label. Both tables are filtered on interval_start, so an index or partition
-- bound on it limits what is read; a label is stored with its event's interval.
SELECT d.event_id, d.ts_utc, d.f1, d.f2, d.f3, l.y_true
FROM processed_data d
JOIN labels l ON l.event_id = d.event_id AND l.interval_start = d.interval_start
WHERE d.interval_start >= %(from)s AND d.interval_start < %(to)s
  AND l.interval_start >= %(from)s AND l.interval_start < %(to)s
ORDER BY d.ts_utc, d.event_id;
