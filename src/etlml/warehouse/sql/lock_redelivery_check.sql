-- Before a merge looks for redelivered ids: wait for the loads that checked before it to commit, and
-- keep the others waiting until this transaction ends (migration 0014).
SELECT etlml_lock_redelivery_check();
