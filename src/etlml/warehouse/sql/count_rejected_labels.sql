-- What rejected_labels holds for one label interval: rejected records, and duplicates.
SELECT count(*) FILTER (WHERE reason <> 'duplicate'), count(*) FILTER (WHERE reason = 'duplicate')
FROM rejected_labels
WHERE interval_start = %(interval_start)s AND interval_end = %(interval_end)s;
