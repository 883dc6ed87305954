-- Why a comparison window may hold no paired events: its labelled events, and how many of them
-- each version predicted.
SELECT count(*) AS labelled,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM predictions p
                                      WHERE p.interval_start = l.interval_start AND p.event_id = l.event_id
                                        AND p.model_version = %(champion)s)),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM predictions p
                                      WHERE p.interval_start = l.interval_start AND p.event_id = l.event_id
                                        AND p.model_version = %(candidate)s))
FROM labels l
WHERE l.interval_start >= %(from)s AND l.interval_start < %(to)s;
