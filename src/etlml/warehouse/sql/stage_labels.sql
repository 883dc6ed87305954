-- The labels of one run that passed the contract, with their provenance and raw bytes (a label whose
-- event is not found is quarantined with them).
CREATE TEMP TABLE stage_labels (
    source_file text NOT NULL,
    row_number  bigint NOT NULL,
    event_id    text COLLATE "C" NOT NULL,
    y_true      double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    raw         bytea NOT NULL
) ON COMMIT DROP;
