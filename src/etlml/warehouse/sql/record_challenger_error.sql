-- A challenger that could not score (a shard of) the load's events: appended to the interval's audit.
UPDATE run_audit
SET challenger_error = concat_ws('; ', challenger_error, %(error)s::text)
WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s
  AND load_id = %(load_id)s;
