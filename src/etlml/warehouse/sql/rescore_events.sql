-- The raw features of a chunk of events, as stored now (an event removed since is not returned),
-- with the interval each belongs to: looked up by processed_data's key (interval_start, event_id), one
-- probe per event, in the window's days only (no data interval is longer than a day).
SELECT d.event_id, d.ts_utc, d.f1, d.f2, d.f3, d.interval_start
FROM unnest(%(ids)s::text[], %(starts)s::timestamptz[]) AS k (event_id, interval_start)
JOIN processed_data AS d ON d.interval_start = k.interval_start AND d.event_id = k.event_id
WHERE d.ts_utc >= %(from)s AND d.ts_utc < %(to)s
  AND d.interval_start > %(from)s - interval '1 day' AND d.interval_start < %(to)s
ORDER BY d.event_id;
