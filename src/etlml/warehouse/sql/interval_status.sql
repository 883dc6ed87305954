-- The ledger of one DAG, one row per 10-minute interval starting in [from, to), stored or not: the
-- accounting of its latest load (run_audit), the model versions it scored with, the label coverage
-- of the version that scored most of its events and when 30_monitor last computed it
-- (model_performance), the code that stored it, and whether a smaller source was refused or accepted.
SELECT g AS interval_start, g + interval '10 minutes' AS interval_end,
       a.source, a.extracted, a.loaded, a.rejected, a.deduplicated, a.gate,
       a.model_versions, a.challenger_error,
       perf.n_predictions, perf.n_labeled, perf.monitored_at,
       a.etlml_version, a.dag_version_id, a.written_by_run, a.checked_at,
       a.smaller_source_refused, a.smaller_source_accepted
FROM generate_series(%(from)s::timestamptz, %(to)s::timestamptz, interval '10 minutes') AS g
LEFT JOIN run_audit AS a
    ON a.dag_id = %(dag_id)s AND a.interval_start = g AND a.interval_end = g + interval '10 minutes'
LEFT JOIN LATERAL (
    SELECT p.n_predictions, p.n_labeled,
           (SELECT max(q.computed_at) FROM model_performance AS q WHERE q.interval_start = g) AS monitored_at
    FROM model_performance AS p
    WHERE p.interval_start = g
    ORDER BY p.n_predictions DESC, p.model_version
    LIMIT 1
) AS perf ON true
WHERE g < %(to)s
ORDER BY g;
