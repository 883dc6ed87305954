CREATE TEMP TABLE stage_rejected_labels (
    source_file text NOT NULL,
    row_number  bigint NOT NULL,
    event_id    text COLLATE "C",
    reason      text NOT NULL,
    message     text NOT NULL,
    raw         bytea NOT NULL
) ON COMMIT DROP;
