-- The intervals whose labels changed since 30_monitor last computed them (monitor_due, queued by the
-- label triggers of migration 0016), wherever they start: what its time-scheduled run recomputes.
-- One whose figures could not be computed is skipped until its labels change again. Oldest first.
SELECT interval_start, interval_end
FROM monitor_due
WHERE problem_seq IS DISTINCT FROM change_seq
ORDER BY interval_start;
