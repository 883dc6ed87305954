-- The labelled events of the intervals that start in [from, to) that both versions predicted: the
-- label and both predictions, in event_id order (the bootstrap resamples by position, so the order
-- is part of what makes a comparison reproducible).
SELECT l.event_id, l.y_true, c.y_hat AS champion, s.y_hat AS candidate
FROM labels l
JOIN predictions c
  ON c.interval_start = l.interval_start AND c.event_id = l.event_id AND c.model_version = %(champion)s
JOIN predictions s
  ON s.interval_start = l.interval_start AND s.event_id = l.event_id AND s.model_version = %(candidate)s
WHERE l.interval_start >= %(from)s AND l.interval_start < %(to)s
  AND c.interval_start >= %(from)s AND c.interval_start < %(to)s
  AND s.interval_start >= %(from)s AND s.interval_start < %(to)s
ORDER BY l.event_id;
