SELECT event_id, event, model_version, previous_version, actor, at, details
FROM model_events ORDER BY event_id;
