-- Staged events whose id processed_data already holds under another interval (filled by
-- merge_processed.sql): the interval that holds each.
CREATE TEMP TABLE stage_redelivered (
    event_id    text COLLATE "C" NOT NULL,
    held_start  timestamptz NOT NULL,
    held_end    timestamptz NOT NULL
) ON COMMIT DROP;
