-- The intervals of one DAG in [from, to) whose latest load recorded the landing files it read.
SELECT interval_start, interval_end, files FROM run_audit
WHERE dag_id = %(dag_id)s AND files IS NOT NULL
  AND interval_start >= %(from)s AND interval_end <= %(to)s
ORDER BY interval_start;
