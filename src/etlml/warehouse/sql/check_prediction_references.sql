-- The references a foreign key would check, set-wise: the model version is registered, and every
-- staged prediction is for an event in processed_data.
SELECT
    EXISTS (SELECT 1 FROM model_versions WHERE model_version = %(model_version)s),
    (SELECT count(*) FROM stage_predictions AS s
     WHERE NOT EXISTS (SELECT 1 FROM processed_data AS d WHERE d.event_id = s.event_id));
