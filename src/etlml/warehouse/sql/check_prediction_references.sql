-- The references a foreign key would check, set-wise: the model version is registered, and every
-- staged prediction is for an event in processed_data, in the interval the prediction names.
SELECT
    EXISTS (SELECT 1 FROM model_versions WHERE model_version = %(model_version)s),
    (SELECT count(*) FROM stage_predictions AS s
     WHERE NOT EXISTS (
         SELECT 1 FROM processed_data AS d
         WHERE d.interval_start = s.interval_start AND d.event_id = s.event_id
     ));
