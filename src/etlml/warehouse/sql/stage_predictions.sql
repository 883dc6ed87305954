CREATE TEMP TABLE stage_predictions (
    event_id        text COLLATE "C" NOT NULL,
    ts_utc          timestamptz NOT NULL,
    y_hat           double precision NOT NULL,
    interval_start  timestamptz NOT NULL
) ON COMMIT DROP;
