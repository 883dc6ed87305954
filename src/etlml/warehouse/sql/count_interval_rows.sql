SELECT count(*) FROM processed_data
WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s;
