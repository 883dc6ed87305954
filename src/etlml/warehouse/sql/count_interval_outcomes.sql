-- Where an interval's records are now: events loaded (counted unless the caller already knows),
-- records rejected, and records dropped as duplicates within the interval or as redeliveries of
-- an id another interval holds.
SELECT
    coalesce(%(loaded)s::bigint, (SELECT count(*) FROM processed_data
     WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s)),
    (SELECT count(*) FROM rejected_events
     WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s
       AND reason <> ALL (%(deduplicated)s)),
    (SELECT count(*) FROM rejected_events
     WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s
       AND reason = ANY (%(deduplicated)s));
