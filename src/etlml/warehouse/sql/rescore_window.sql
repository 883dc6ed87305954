-- The raw features of every processed event in [from, to), read once through a server-side cursor.
SELECT event_id, ts_utc, f1, f2, f3
FROM processed_data
WHERE ts_utc >= %(from)s AND ts_utc < %(to)s
ORDER BY event_id;
