-- Which load of an interval its predictions were computed from, and what a failing challenger did.
--
-- The note above the predictions table in 0001 says merge_predictions.sql is its only writer and
-- checks the references; since 0003 the pipeline's first store of a shard is a plain COPY, which
-- checks nothing row by row. What holds instead, on every path (README "Integrity"):
--   * load_processed gives each load of an interval a new load_id (below), in the transaction that
--     writes the interval's rows; in that transaction it deletes the predictions of every row whose
--     features it changed or removed, so no prediction outlives the features it was computed from;
--   * store_predictions stores a shard only if run_audit.load_id is still the load its predict
--     step read, checked under a share lock on that row in the store's transaction: the predicted
--     events are then exactly rows that load committed, minus the ids it refused as redelivered,
--     which predict does not score; a store from an outdated load fails without retry;
--   * the staging path (reruns, 20_rescore) also checks set-wise that every predicted event is in
--     processed_data (sql/check_prediction_references.sql).
COMMENT ON TABLE predictions IS
    'No foreign keys (row-by-row checks cost more than the insert). Every prediction is of a row of '
    'processed_data: loads delete the predictions of rows they change or remove, and a store is '
    'refused unless run_audit.load_id is the load it was computed from. See migration 0005.';

-- A new value for every load of an interval (NULL on rows written before this migration).
ALTER TABLE run_audit ADD COLUMN load_id uuid;

-- Why the challenger could not score the interval (NULL when it scored, or none was shadowing): a
-- failing challenger is recorded here and logged, and never fails the run; the champion's
-- predictions are stored whatever the challenger does.
ALTER TABLE run_audit ADD COLUMN challenger_error text;

-- 'redelivered': an event id another interval already holds; the first stored delivery wins, and
-- the later record is kept here like a duplicate (counted in run_audit.deduplicated).
COMMENT ON COLUMN rejected_events.reason IS
    'a reason code of the data contract (README "Landing files and quarantine"); ''duplicate'' and '
    '''redelivered'' rows are counted as deduplicated, the others as rejected';
