INSERT INTO model_events (event, model_version, previous_version, actor, details)
VALUES (%(event)s, %(model_version)s, %(previous_version)s, %(actor)s, %(details)s)
RETURNING event_id;
