-- The load of an interval that its stored rows come from, the audit row share-locked so that no
-- load of the interval commits before the caller's transaction ends.
SELECT load_id, written_by_run FROM run_audit
WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s
FOR SHARE;
