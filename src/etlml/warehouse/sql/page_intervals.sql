-- The etlml page: a DAG's intervals that started within the window, the accounting of each one's latest
-- load (run_audit), and the label coverage of the version that scored most of its events
-- (model_performance, written by 30_monitor; NULL until it has run for the interval).
SELECT a.interval_start, a.interval_end, a.source, a.extracted, a.loaded, a.rejected, a.deduplicated,
       a.rejected_share, a.max_rejected_share, a.gate, a.checked_at,
       perf.n_predictions, perf.n_labeled
FROM run_audit AS a
LEFT JOIN LATERAL (
    SELECT p.n_predictions, p.n_labeled
    FROM model_performance AS p
    WHERE p.interval_start = a.interval_start AND p.interval_end = a.interval_end
    ORDER BY p.n_predictions DESC, p.model_version
    LIMIT 1
) AS perf ON true
WHERE a.dag_id = %(dag_id)s AND a.interval_start >= now() - %(window)s
ORDER BY a.interval_start;
