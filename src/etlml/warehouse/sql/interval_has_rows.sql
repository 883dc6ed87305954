-- Whether processed_data holds any row of the interval (a rerun), by its interval_start index.
SELECT EXISTS (
    SELECT 1 FROM processed_data
    WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s
);
