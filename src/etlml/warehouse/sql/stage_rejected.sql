-- Keyed as rejected_events is within an interval: remove_stale_rejected.sql looks each stored record
-- up here by its key. Without the key, a partition whose statistics say it is empty (a new day, a
-- TRUNCATE) got a nested loop that scanned every staged record once per stored record: quadratic,
-- ten seconds for 10,000 rejected records.
CREATE TEMP TABLE stage_rejected (
    source_file text NOT NULL,
    row_number  bigint NOT NULL,
    event_id    text COLLATE "C",
    reason      text NOT NULL,
    message     text NOT NULL,
    raw         bytea NOT NULL,
    PRIMARY KEY (source_file, row_number)
) ON COMMIT DROP;
