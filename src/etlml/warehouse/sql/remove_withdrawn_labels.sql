-- The labels this label interval delivered last time that its files no longer hold (a corrected or
-- removed file): removed, so the interval's labels equal its latest delivery. A label a later
-- delivery holds has that delivery's interval in delivered_in and stays; one whose event is no longer
-- found stays too (the file still holds it). Returns how many were removed.
WITH removed AS (
    DELETE FROM labels AS l
    WHERE l.delivered_in = %(delivered_in)s
      AND NOT EXISTS (SELECT 1 FROM stage_labels AS s WHERE s.event_id = l.event_id)
    RETURNING 1
)
SELECT count(*) FROM removed;
