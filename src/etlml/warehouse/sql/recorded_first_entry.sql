-- The first entry id a previous run of this DAG and interval read (no row: never run).
SELECT first_entry_id
FROM run_audit
WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s;
