-- Mean and sample standard deviation of the raw features of processed_data in [from, to).
SELECT count(*),
       avg(f1), stddev_samp(f1), avg(f2), stddev_samp(f2), avg(f3), stddev_samp(f3)
FROM processed_data
WHERE ts_utc >= %(from)s AND ts_utc < %(to)s
  -- an event's interval starts at most a day before it: only those partitions are read
  AND interval_start > %(from)s - interval '1 day' AND interval_start < %(to)s;
