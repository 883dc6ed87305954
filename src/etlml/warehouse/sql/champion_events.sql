-- Every change of champion, oldest first: the history that rollback walks back.
SELECT event, model_version FROM model_events WHERE event IN ('promote', 'rollback') ORDER BY event_id;
