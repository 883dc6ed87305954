CREATE TEMP TABLE stage_processed (
    event_id    text COLLATE "C" NOT NULL,
    ts_utc      timestamptz NOT NULL,
    f1          double precision,
    f2          double precision,
    f3          double precision,
    f1_z        double precision NOT NULL,
    f2_z        double precision NOT NULL,
    f3_z        double precision NOT NULL,
    f1_imputed  boolean NOT NULL,
    f2_imputed  boolean NOT NULL,
    f3_imputed  boolean NOT NULL
) ON COMMIT DROP;
