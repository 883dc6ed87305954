-- Filled by stage_redelivered_in_window.sql: staged events whose id processed_data already holds under
-- another interval (with the interval that holds each); and by merge_processed.sql: events whose
-- stored features it changed.
CREATE TEMP TABLE stage_redelivered (
    event_id    text COLLATE "C" NOT NULL,
    held_start  timestamptz NOT NULL,
    held_end    timestamptz NOT NULL
) ON COMMIT DROP;

CREATE TEMP TABLE stage_changed (
    event_id    text COLLATE "C" NOT NULL
) ON COMMIT DROP;
