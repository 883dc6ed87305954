-- The etlml page: the latest changes to the model registry, newest first.
SELECT event_id, event, model_version, previous_version, actor, at, details
FROM model_events
ORDER BY at DESC, event_id DESC
LIMIT %(limit)s;
