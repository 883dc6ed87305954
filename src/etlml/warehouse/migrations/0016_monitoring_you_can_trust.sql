-- Monitoring that every stored label reaches, that no single value can stop, and that estimates a
-- version's error before its labels arrive.

-- Which label interval delivered each label: the start of the 15_ingest_labels interval whose run
-- last wrote it. A rerun of that interval removes the labels its files no longer hold (a later
-- delivery has moved the row to its own interval, so it stays). Labels stored before this column
-- existed are dated from their landing file's partition ('labels/YYYY-MM-DD/HHMM/...'); the
-- simulator's keep NULL until their label interval runs again (they never change).
ALTER TABLE labels ADD COLUMN delivered_in timestamptz;
UPDATE labels
SET delivered_in = to_timestamp(
        substring(source_file from '^labels/([0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{4})/') || ' +00',
        'YYYY-MM-DD/HH24MI TZH')
WHERE source_file ~ '^labels/[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{4}/';
CREATE INDEX labels_delivered_in_idx ON labels (delivered_in);

-- The intervals whose labels changed since 30_monitor last computed them, wherever they start: every
-- insert, update or delete of a label queues its event's interval (the triggers below), and a
-- computation removes the row it read unless the labels changed again meanwhile (change_seq moved
-- on). An interval whose figures cannot be computed keeps its row with the problem and the
-- change_seq it was seen at, so the sweep skips it until its labels change again.
CREATE SEQUENCE monitor_due_seq;
CREATE TABLE monitor_due (
    interval_start  timestamptz PRIMARY KEY,
    interval_end    timestamptz NOT NULL,
    change_seq      bigint NOT NULL DEFAULT nextval('monitor_due_seq'),
    changed_at      timestamptz NOT NULL DEFAULT now(),
    problem         text,
    problem_seq     bigint,
    CHECK (interval_start < interval_end)
);

CREATE FUNCTION etlml_queue_label_intervals() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- plpgsql plans each statement when it first runs, so each branch names only the transition
    -- tables its trigger has
    IF TG_OP = 'INSERT' THEN
        INSERT INTO monitor_due AS d (interval_start, interval_end)
        SELECT DISTINCT ON (interval_start) interval_start, interval_end FROM new_labels
        ORDER BY interval_start
        ON CONFLICT (interval_start) DO UPDATE SET change_seq = nextval('monitor_due_seq'), changed_at = now();
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO monitor_due AS d (interval_start, interval_end)
        SELECT DISTINCT ON (interval_start) interval_start, interval_end
        FROM (SELECT interval_start, interval_end FROM old_labels
              UNION ALL SELECT interval_start, interval_end FROM new_labels) AS changed
        ORDER BY interval_start
        ON CONFLICT (interval_start) DO UPDATE SET change_seq = nextval('monitor_due_seq'), changed_at = now();
    ELSE
        -- labels removed with their day's partitions (retention) leave nothing to compute: the
        -- interval's monitoring rows are kept as they are
        INSERT INTO monitor_due AS d (interval_start, interval_end)
        SELECT DISTINCT ON (o.interval_start) o.interval_start, o.interval_end FROM old_labels AS o
        WHERE EXISTS (SELECT 1 FROM processed_data AS p WHERE p.interval_start = o.interval_start)
        ORDER BY o.interval_start
        ON CONFLICT (interval_start) DO UPDATE SET change_seq = nextval('monitor_due_seq'), changed_at = now();
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER labels_inserted AFTER INSERT ON labels REFERENCING NEW TABLE AS new_labels
    FOR EACH STATEMENT EXECUTE FUNCTION etlml_queue_label_intervals();
CREATE TRIGGER labels_updated AFTER UPDATE ON labels
    REFERENCING OLD TABLE AS old_labels NEW TABLE AS new_labels
    FOR EACH STATEMENT EXECUTE FUNCTION etlml_queue_label_intervals();
CREATE TRIGGER labels_deleted AFTER DELETE ON labels REFERENCING OLD TABLE AS old_labels
    FOR EACH STATEMENT EXECUTE FUNCTION etlml_queue_label_intervals();

-- What the sweep of the previous rule (labels.updated_at after model_performance.computed_at, in the
-- label window) would have found: queued once, wherever it starts.
INSERT INTO monitor_due (interval_start, interval_end)
SELECT l.interval_start, min(l.interval_end)
FROM labels AS l
LEFT JOIN (
    SELECT interval_start, min(computed_at) AS computed_at FROM model_performance GROUP BY interval_start
) AS c USING (interval_start)
GROUP BY l.interval_start
HAVING bool_or(c.computed_at IS NULL OR l.updated_at > c.computed_at);

-- Realized figures that could not be computed say why (e.g. a prediction or label too large to
-- square); every figure stored is finite or NULL.
ALTER TABLE model_performance
    ADD COLUMN problem text,
    ADD CONSTRAINT model_performance_finite_check CHECK (
        (mae IS NULL OR (mae >= 0 AND mae < 'Infinity'))
        AND (rmse IS NULL OR (rmse >= 0 AND rmse < 'Infinity'))
        AND (bias IS NULL OR (bias > '-Infinity' AND bias < 'Infinity'))
    );

-- Every number a comparison stores is finite or NULL ('Infinity' stood for an RMSE whose squares
-- overflowed: it was never a figure).
UPDATE model_comparisons SET champion_rmse = NULL WHERE champion_rmse IN ('Infinity', '-Infinity', 'NaN');
UPDATE model_comparisons SET candidate_rmse = NULL WHERE candidate_rmse IN ('Infinity', '-Infinity', 'NaN');
UPDATE model_comparisons SET champion_mae = NULL WHERE champion_mae IN ('Infinity', '-Infinity', 'NaN');
UPDATE model_comparisons SET candidate_mae = NULL WHERE candidate_mae IN ('Infinity', '-Infinity', 'NaN');
UPDATE model_comparisons SET mae_diff = NULL, ci_low = NULL, ci_high = NULL
WHERE mae_diff IN ('Infinity', '-Infinity', 'NaN') OR ci_low IN ('Infinity', '-Infinity', 'NaN')
   OR ci_high IN ('Infinity', '-Infinity', 'NaN');
ALTER TABLE model_comparisons ADD CONSTRAINT model_comparisons_finite_check CHECK (
    (champion_mae IS NULL OR (champion_mae > '-Infinity' AND champion_mae < 'Infinity'))
    AND (candidate_mae IS NULL OR (candidate_mae > '-Infinity' AND candidate_mae < 'Infinity'))
    AND (champion_rmse IS NULL OR (champion_rmse > '-Infinity' AND champion_rmse < 'Infinity'))
    AND (candidate_rmse IS NULL OR (candidate_rmse > '-Infinity' AND candidate_rmse < 'Infinity'))
    AND (mae_diff IS NULL OR (mae_diff > '-Infinity' AND mae_diff < 'Infinity'))
    AND (ci_low IS NULL OR (ci_low > '-Infinity' AND ci_low < 'Infinity'))
    AND (ci_high IS NULL OR (ci_high > '-Infinity' AND ci_high < 'Infinity'))
);

-- A version's error estimator (direct loss estimation, etlml.models.estimation): a small regressor of
-- the absolute error from the features and the version's prediction, fitted on labelled events the
-- version did not train on (its holdout, or stored labelled events: `etlml models fit-estimator`),
-- saved with skops under the storage root and checked against its sha256 on every load.
-- reference_mae: the version's MAE on those events (the alert threshold is relative to it);
-- reference_abs_error_std: the spread of the absolute errors there, which sizes the estimate's band.
-- Refitting replaces the row (the previous file stays, under its own name).
CREATE TABLE error_estimators (
    model_version   text PRIMARY KEY REFERENCES model_versions (model_version),
    artifact_uri    text NOT NULL,
    artifact_sha256 text NOT NULL CHECK (artifact_sha256 ~ '^[0-9a-f]{64}$'),
    n               bigint NOT NULL CHECK (n > 0),
    reference_mae   double precision NOT NULL CHECK (reference_mae > 0 AND reference_mae < 'Infinity'),
    reference_abs_error_std double precision NOT NULL
                    CHECK (reference_abs_error_std >= 0 AND reference_abs_error_std < 'Infinity'),
    fitted_on       text NOT NULL,
    window_from     timestamptz,
    window_to       timestamptz,
    fitted_by       text NOT NULL,
    fitted_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((window_from IS NULL) = (window_to IS NULL) AND window_from < window_to)
);

-- Fitting a version's error estimator is a registry change like the others: recorded in model_events
-- (event 'fit_estimator', what it was fitted on in details).
ALTER TABLE model_events
    DROP CONSTRAINT model_events_event_check,
    ADD CONSTRAINT model_events_event_check
        CHECK (event IN ('register', 'promote', 'shadow', 'unshadow', 'rollback', 'fit_estimator'));

-- Per interval and version, beside the realized figures: the estimated MAE of the version's error
-- estimator with its band, the threshold it was held against (ETLML_ESTIMATED_MAE_ALERT_RATIO times
-- the estimator's reference MAE) and whether it crossed it. NULL: the version has no estimator.
ALTER TABLE model_performance
    ADD COLUMN estimated_mae double precision,
    ADD COLUMN estimated_mae_low double precision,
    ADD COLUMN estimated_mae_high double precision,
    ADD COLUMN estimate_threshold double precision,
    ADD COLUMN estimate_alert boolean,
    ADD CONSTRAINT model_performance_estimate_check CHECK (
        (estimated_mae IS NULL OR (estimated_mae >= 0 AND estimated_mae < 'Infinity'))
        AND (estimated_mae_low IS NULL OR (estimated_mae_low >= 0 AND estimated_mae_low <= estimated_mae))
        AND (estimated_mae_high IS NULL
             OR (estimated_mae_high >= estimated_mae AND estimated_mae_high < 'Infinity'))
        AND (estimate_threshold IS NULL OR (estimate_threshold > 0 AND estimate_threshold < 'Infinity'))
        AND ((estimated_mae IS NULL) = (estimate_alert IS NULL))
    );
