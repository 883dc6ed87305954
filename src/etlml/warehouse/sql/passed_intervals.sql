-- The intervals of one DAG in [from, to) with a run whose records passed the quality gate.
SELECT interval_start, interval_end FROM run_audit
WHERE dag_id = %(dag_id)s AND gate = 'passed'
  AND interval_start >= %(from)s AND interval_end <= %(to)s;
