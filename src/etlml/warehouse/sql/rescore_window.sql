-- The id and interval of every processed event in [from, to), read once through a server-side
-- cursor; each chunk's features are read again under its intervals' locks (rescore_events.sql).
-- An event's interval starts at most a day before it (no data interval is longer), which bounds
-- the partitions read.
SELECT event_id, interval_start, interval_end
FROM processed_data
WHERE ts_utc >= %(from)s AND ts_utc < %(to)s
  AND interval_start > %(from)s - interval '1 day' AND interval_start < %(to)s
ORDER BY event_id;
