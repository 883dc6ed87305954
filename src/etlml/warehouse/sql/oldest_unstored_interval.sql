-- The start of the oldest 10-minute interval of one DAG starting in [from, to) without a stored run
-- whose records passed the quality gate (NULL: every one has one). Stream entries from there on may
-- still have to be read: nothing trims them.
SELECT min(g)
FROM generate_series(%(from)s::timestamptz, %(to)s::timestamptz, interval '10 minutes') AS g
WHERE g < %(to)s
  AND NOT EXISTS (
      SELECT 1 FROM run_audit AS a
      WHERE a.dag_id = %(dag_id)s AND a.interval_start = g AND a.gate = 'passed'
  );
