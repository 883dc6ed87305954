-- The intervals of one DAG in [from, to) with what their latest load read of the source (the ledger;
-- for rows stored before it, the columns it grew from).
SELECT interval_start, interval_end, source, ledger, files, extracted, first_entry_id FROM run_audit
WHERE dag_id = %(dag_id)s
  AND interval_start >= %(from)s AND interval_end <= %(to)s
ORDER BY interval_start;
