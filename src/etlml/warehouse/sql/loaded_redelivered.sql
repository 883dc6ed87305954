-- After a straight COPY into an interval that held no rows: does another interval starting within the
-- dedup window hold one of the ids just loaded? (If so the load is undone and merged instead, which
-- finds and refuses them.) Each side of the window (before and after this interval's start) is
-- probed only if another interval there holds rows, found once through the interval_start index;
-- then each id is looked up in the key (event_id, interval_start) of that side's partitions, so an id
-- found nowhere else costs an index probe per partition and no heap visit. An interval with the same
-- start but another end cannot hold the id: the key would have refused the COPY.
SELECT
    (EXISTS (SELECT 1 FROM processed_data
             WHERE interval_start >= %(window_start)s AND interval_start < %(interval_start)s)
     AND EXISTS (SELECT 1 FROM processed_data AS n
                 WHERE n.interval_start = %(interval_start)s AND n.interval_end = %(interval_end)s
                   AND EXISTS (SELECT 1 FROM processed_data AS p
                               WHERE p.event_id = n.event_id
                                 AND p.interval_start >= %(window_start)s
                                 AND p.interval_start < %(interval_start)s)))
    OR
    (EXISTS (SELECT 1 FROM processed_data
             WHERE interval_start > %(interval_start)s AND interval_start < %(window_end)s)
     AND EXISTS (SELECT 1 FROM processed_data AS n
                 WHERE n.interval_start = %(interval_start)s AND n.interval_end = %(interval_end)s
                   AND EXISTS (SELECT 1 FROM processed_data AS p
                               WHERE p.event_id = n.event_id
                                 AND p.interval_start > %(interval_start)s
                                 AND p.interval_start < %(window_end)s)));
