-- Core warehouse tables: model registry, processed events and predictions.

CREATE TABLE model_versions (
    model_version   text PRIMARY KEY CHECK (model_version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    kind            text NOT NULL CHECK (kind IN ('linear')),
    -- linear: {"coef": {"f1": 0.3, ...}, "intercept": 0.0}
    params          jsonb NOT NULL,
    -- per feature {"mean": m, "std": s}: imputation value and z-score normalization
    feature_stats   jsonb NOT NULL,
    description     text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- A version, once registered, never changes: a changed parameter is a new version.
CREATE FUNCTION model_versions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'model_versions rows are immutable; register a new version instead of changing %',
        OLD.model_version;
END;
$$;

CREATE TRIGGER model_versions_no_update
    BEFORE UPDATE OR DELETE ON model_versions
    FOR EACH ROW EXECUTE FUNCTION model_versions_immutable();

-- Which version serves. 'champion' is the active version the pipeline scores with.
CREATE TABLE model_aliases (
    alias           text PRIMARY KEY CHECK (alias IN ('champion')),
    model_version   text NOT NULL REFERENCES model_versions (model_version),
    assigned_at     timestamptz NOT NULL DEFAULT now()
);

-- event_id compares bytewise (COLLATE "C"): ids are opaque keys, and the primary-key index is
-- several times cheaper to maintain than under a linguistic collation.
CREATE TABLE processed_data (
    event_id        text COLLATE "C" PRIMARY KEY,
    ts_utc          timestamptz NOT NULL,
    -- raw features as received; NULL where the source had no value
    f1              double precision,
    f2              double precision,
    f3              double precision,
    -- normalized features, after imputation
    f1_z            double precision NOT NULL,
    f2_z            double precision NOT NULL,
    f3_z            double precision NOT NULL,
    -- true where the raw value was missing and the version's mean was imputed
    f1_imputed      boolean NOT NULL,
    f2_imputed      boolean NOT NULL,
    f3_imputed      boolean NOT NULL,
    -- the model version whose statistics normalized this row, or 'batch' (case-study mode)
    normalized_with text NOT NULL,
    interval_start  timestamptz NOT NULL,
    interval_end    timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_start < interval_end),
    CHECK (ts_utc >= interval_start AND ts_utc < interval_end)
);

CREATE INDEX processed_data_interval_idx ON processed_data (interval_start);

-- No FOREIGN KEY clauses here on purpose: PostgreSQL checks them row by row, which costs more
-- than the insert itself (about 14 s per million predictions on 2 cores). The only writer,
-- sql/merge_predictions.sql, checks both references set-wise in the same transaction and
-- refuses the whole batch if one is missing; sql/remove_stale_processed.sql removes the
-- predictions of the events it removes. model_versions rows cannot be deleted (trigger above).
CREATE TABLE predictions (
    event_id         text COLLATE "C" NOT NULL,
    model_version    text NOT NULL,
    y_hat            double precision NOT NULL,
    ts_utc           timestamptz NOT NULL,
    predicted_at_utc timestamptz NOT NULL DEFAULT now(),
    -- the Airflow run (dag_id/run_id) that wrote or last changed this row
    written_by_run   text NOT NULL,
    PRIMARY KEY (event_id, model_version)
);


