-- The interval's latest run found its source smaller than what the stored run read, and loaded
-- nothing: the stored rows and their accounting stay; the flag stays until the next load.
UPDATE run_audit SET smaller_source_refused = %(refusal)s
WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s;
