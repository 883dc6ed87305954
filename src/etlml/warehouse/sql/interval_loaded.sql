-- Whether a DAG's load of an interval is committed (its accounting is in run_audit).
SELECT EXISTS (
    SELECT 1 FROM run_audit
    WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s
);
