-- The labelled events of the intervals that start in [from, to) that both versions predicted: the
-- label and both predictions, in event_id order (the bootstrap resamples by position, so the order
-- is part of what makes a comparison reproducible).
SELECT l.event_id, l.y_true, c.y_hat AS champion, s.y_hat AS candidate
FROM labels l
JOIN predictions c ON c.event_id = l.event_id AND c.model_version = %(champion)s
JOIN predictions s ON s.event_id = l.event_id AND s.model_version = %(candidate)s
WHERE l.interval_start >= %(from)s AND l.interval_start < %(to)s
ORDER BY l.event_id;
