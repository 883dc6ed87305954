-- What one DAG's latest stored run of an interval read of its source (the ledger; for rows stored
-- before it, the columns it grew from). No row: the interval was never stored.
SELECT ledger, extracted, files, first_entry_id FROM run_audit
WHERE dag_id = %(dag_id)s AND interval_start = %(interval_start)s AND interval_end = %(interval_end)s;
