-- The raw features of a chunk of events, as stored now (an event removed since is not returned),
-- with the interval each belongs to.
SELECT event_id, ts_utc, f1, f2, f3, interval_start
FROM processed_data
WHERE event_id = ANY (%(ids)s) AND ts_utc >= %(from)s AND ts_utc < %(to)s
  AND interval_start > %(from)s - interval '1 day' AND interval_start < %(to)s
ORDER BY event_id;
