-- Matched labels that an already stored, later delivery supersedes (its file comes later in
-- code-point order: a later partition, or a later file of the same one) of another label interval:
-- they change nothing.
SELECT count(*)
FROM matched_labels AS m
JOIN labels AS l USING (event_id)
WHERE m.source_file COLLATE "C" < l.source_file COLLATE "C"
  AND l.delivered_in IS DISTINCT FROM %(delivered_in)s;
