-- Ground truth and monitoring: labels, realized accuracy and input drift per interval and model
-- version, reference profiles and training evidence on model versions, and stored comparisons.

-- One label per event: the latest delivery wins (a later delivery overwrites y_true and observed_at,
-- and adds one to deliveries). interval_start/interval_end are the interval of the labelled event,
-- copied from processed_data when the label is stored, so monitoring finds an interval's labels
-- without a join over every interval.
CREATE TABLE labels (
    event_id        text COLLATE "C" PRIMARY KEY,
    y_true          double precision NOT NULL
                    CHECK (y_true > '-Infinity'::double precision AND y_true < 'Infinity'::double precision),
    observed_at     timestamptz NOT NULL,
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    -- the label file relative to the landing root ('labels/YYYY-MM-DD/HHMM/name'), or 'simulator'
    source_file     text NOT NULL,
    -- the Airflow run (dag_id/run_id) that wrote or last changed this row
    written_by_run  text NOT NULL,
    deliveries      integer NOT NULL DEFAULT 1 CHECK (deliveries >= 1),
    -- when this row last changed: 30_monitor recomputes the intervals whose labels changed since it last ran
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_start < interval_end)
);

CREATE INDEX labels_interval_idx ON labels (interval_start);
CREATE INDEX labels_updated_idx ON labels (updated_at);

-- Label records that broke the labels' contract, shaped like rejected_events and keyed by the
-- 15_ingest_labels run's interval (reasons include 'unknown_event': no stored event has that id).
CREATE TABLE rejected_labels (
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    source_file     text NOT NULL,
    row_number      bigint NOT NULL CHECK (row_number >= 0),
    reason          text NOT NULL CHECK (reason ~ '^[a-z_]+$'),
    message         text NOT NULL,
    event_id        text COLLATE "C",
    raw             bytea NOT NULL,
    written_by_run  text NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interval_start, interval_end, source_file, row_number),
    CHECK (interval_start < interval_end)
);

-- Realized accuracy of each model version on each interval's labelled events (y_hat - y_true).
-- Rewritten whole for an interval whenever it is recomputed (idempotent).
CREATE TABLE model_performance (
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    model_version   text NOT NULL REFERENCES model_versions (model_version),
    n_predictions   bigint NOT NULL CHECK (n_predictions >= 0),
    n_labeled       bigint NOT NULL CHECK (n_labeled >= 0 AND n_labeled <= n_predictions),
    -- NULL while no prediction of the interval has a label
    mae             double precision,
    rmse            double precision,
    bias            double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interval_start, model_version),
    CHECK (interval_start < interval_end)
);

-- Population stability of each input (f1, f2, f3: raw values) and of the score (y_hat) of each
-- interval against the model version's reference profile.
CREATE TABLE feature_drift (
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    model_version   text NOT NULL REFERENCES model_versions (model_version),
    feature         text NOT NULL CHECK (feature IN ('f1', 'f2', 'f3', 'score')),
    n               bigint NOT NULL CHECK (n >= 0),
    -- NULL when the interval has no non-missing value of the feature
    psi             double precision,
    missing_share   double precision NOT NULL CHECK (missing_share >= 0 AND missing_share <= 1),
    status          text NOT NULL CHECK (status IN ('ok', 'warn', 'alert')),
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (interval_start, model_version, feature),
    CHECK (interval_start < interval_end)
);

-- What a version was fitted on, registered with it (the immutability trigger of 0001 still holds):
--   reference_profile: per column (f1, f2, f3: raw inputs; score: the version's y_hat), the form of
--       etlml.features.profile:
--       {"edges": [e1, ..., ek], "expected": [p0, ..., pk], "missing_share": m, "n": n}: k increasing inner bin edges and the
--       k + 1 expected shares of the bins (-inf, e1), [e1, e2), ..., [ek, +inf), summing to 1,
--       as width_bucket(value, edges) numbers them from 0;
--   training_from/training_to: the window of labelled events it was trained on (NULL: not trained here);
--   validation_metrics: e.g. {"n": 1200, "mae": 0.41, "rmse": 0.52, "holdout": "last 20% by ts_utc"}.
ALTER TABLE model_versions
    ADD COLUMN reference_profile jsonb,
    ADD COLUMN training_from timestamptz,
    ADD COLUMN training_to timestamptz,
    ADD COLUMN validation_metrics jsonb,
    ADD CONSTRAINT model_versions_training_window_check
        CHECK ((training_from IS NULL) = (training_to IS NULL) AND training_from < training_to);

-- Every `etlml models compare`: the champion against a candidate on the same labelled events, with
-- the MAE difference (candidate - champion) and its 95% paired-bootstrap interval. A promotion
-- stores the evidence it acted on in model_events.details.
CREATE TABLE model_comparisons (
    comparison_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    champion        text NOT NULL REFERENCES model_versions (model_version),
    candidate       text NOT NULL REFERENCES model_versions (model_version),
    window_from     timestamptz NOT NULL,
    window_to       timestamptz NOT NULL,
    n               bigint NOT NULL CHECK (n >= 0),
    champion_mae    double precision,
    candidate_mae   double precision,
    champion_rmse   double precision,
    candidate_rmse  double precision,
    mae_diff        double precision,
    ci_low          double precision,
    ci_high         double precision,
    bootstrap_samples integer NOT NULL CHECK (bootstrap_samples > 0),
    seed            bigint NOT NULL,
    actor           text NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (window_from < window_to)
);
