-- The labelled processed events of the intervals that start in [from, to) with one version's stored
-- prediction: the raw features (NULL where missing), the prediction and the label.
SELECT d.f1, d.f2, d.f3, p.y_hat, l.y_true
FROM processed_data d
JOIN labels l ON l.event_id = d.event_id AND l.interval_start = d.interval_start
JOIN predictions p
  ON p.interval_start = d.interval_start AND p.event_id = d.event_id AND p.model_version = %(version)s
WHERE d.interval_start >= %(from)s AND d.interval_start < %(to)s
  AND l.interval_start >= %(from)s AND l.interval_start < %(to)s
  AND p.interval_start >= %(from)s AND p.interval_start < %(to)s
ORDER BY d.interval_start, d.event_id;
