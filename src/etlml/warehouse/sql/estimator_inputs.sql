-- One version's inputs of its error estimator on one interval, as binary COPY: f1, f2, f3 (NaN where
-- missing, so every row has the same width) and y_hat. An interval of more than %(limit)s events is
-- read on the events whose id hashes into the first %(limit)s / n of the range (the same ones on every
-- recompute). Both tables are read by interval_start, so each reads one day partition.
COPY (
    SELECT coalesce(d.f1, 'NaN'), coalesce(d.f2, 'NaN'), coalesce(d.f3, 'NaN'), p.y_hat
    FROM processed_data AS d
    JOIN predictions AS p
        ON p.interval_start = d.interval_start AND p.event_id = d.event_id
       AND p.model_version = %(version)s
    WHERE d.interval_start = %(start)s AND p.interval_start = %(start)s
      AND (%(share)s >= 1.0 OR (hashtext(d.event_id)::float8 + 2147483648.0) / 4294967296.0 < %(share)s)
) TO STDOUT (FORMAT binary);
