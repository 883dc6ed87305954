-- Detach and drop the day partitions of processed_data, predictions and rejected_events (and the
-- labels of those days) that end on or before %(before)s (migration 0013; runs with the owner's rights).
SELECT day, processed_rows, prediction_rows, rejected_rows FROM etlml_drop_partitions_before(%(before)s);
