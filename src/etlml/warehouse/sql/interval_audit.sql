-- The stored accounting of one DAG's interval and whether the interval holds rows, the audit row
-- locked until the transaction ends (a load of the interval, or a store that checks load_id), and
-- what its latest run read of the source (the ledger; for rows stored before it, the columns it grew from).
SELECT a.source, a.load_id, a.written_by_run,
       (SELECT count(*) FROM processed_data
        WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s),
       (SELECT count(*) FROM rejected_events
        WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s),
       a.ledger, a.extracted, a.files, a.first_entry_id
FROM run_audit AS a
WHERE a.dag_id = %(dag_id)s AND a.interval_start = %(interval_start)s AND a.interval_end = %(interval_end)s
FOR UPDATE OF a;
