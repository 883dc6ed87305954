SELECT event_id, held_start, held_end FROM stage_redelivered ORDER BY event_id;
