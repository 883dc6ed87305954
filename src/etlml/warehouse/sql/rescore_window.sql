-- The id and interval of every processed event in [from, to), read once through a server-side
-- cursor; each chunk's features are read again under its intervals' locks (rescore_events.sql).
SELECT event_id, interval_start, interval_end
FROM processed_data
WHERE ts_utc >= %(from)s AND ts_utc < %(to)s
ORDER BY event_id;
