-- The staged labels whose event is stored, with the event's interval. Events are looked up by id
-- within the window of intervals [window_start, interval_end) (ETLML_LABEL_WINDOW_DAYS before the
-- run's interval), by interval_start, so a table partitioned by interval_start reads only the
-- window's partitions; should an id be stored in two intervals, the earliest holds the label.
CREATE TEMP TABLE matched_labels ON COMMIT DROP AS
SELECT DISTINCT ON (s.event_id)
       s.event_id, s.y_true, s.observed_at, s.source_file, d.interval_start, d.interval_end
FROM stage_labels AS s
JOIN processed_data AS d
  ON d.event_id = s.event_id
 AND d.interval_start >= %(window_start)s
 AND d.interval_start < %(interval_end)s
ORDER BY s.event_id, d.interval_start;
