-- The predictions, of every model version, of the events whose features merge_processed.sql just
-- changed: computed from features that are gone (stage_changed is analyzed first, so the planner
-- looks them up by the primary key of this interval's partition instead of scanning predictions).
DELETE FROM predictions AS pr USING stage_changed AS c
WHERE pr.interval_start = %(interval_start)s AND pr.event_id = c.event_id;
