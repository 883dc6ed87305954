-- Realized accuracy and input drift of every model version with predictions in one interval
-- [%(start)s, %(end)s), written in one statement into model_performance and feature_drift (the caller
-- deleted the interval's previous rows in the same transaction). Returns the feature_drift rows.
--
-- The interval's rows are read once: its processed events (filtered by interval_start, so partitions
-- prune) with each version's prediction and the event's label, if any, hashed into small groups per
-- version and combination of bins of f1, f2, f3 (raw values) and the score (y_hat); the bins are
-- numbered by width_bucket against the version's reference_profile edges exactly as
-- etlml.features.profile numbers them (a NULL value has no bin: it is missing). The groups are then
-- summed five ways (GROUPING SETS): per version for the accuracy figures, per version and bin of each
-- column for the drift. Versions without a reference profile get accuracy rows only.
-- predictions and labels are joined on (interval_start, event_id), so each reads one day partition.
--
-- A labelled prediction whose prediction or label exceeds %(max_measured)s in magnitude (1e100; the
-- contracts accept at most ETLML_MAX_ABS_VALUE, 1e15 by default) has no error: its square could
-- overflow float8 and stop the statement. A version with any such prediction gets no error figures
-- and a problem saying why; its counts and drift are computed as usual.
--
-- PSI = sum over bins of (a - e) * ln(a / e), a and e floored at %(share_floor)s
-- (etlml.features.profile.SHARE_FLOOR); NULL when no row has a value of the feature, which counts as
-- an alert (the input is gone). Status: alert from %(psi_alert)s on, warn from %(psi_warn)s on, else ok.
WITH profiled AS (
    SELECT v.model_version, c.feature, c.profile
    FROM model_versions v
    CROSS JOIN LATERAL jsonb_each(v.reference_profile) AS c (feature, profile)
    WHERE c.feature IN ('f1', 'f2', 'f3', 'score')
),
edges AS (
    SELECT model_version,
           max(edges) FILTER (WHERE feature = 'f1') AS f1,
           max(edges) FILTER (WHERE feature = 'f2') AS f2,
           max(edges) FILTER (WHERE feature = 'f3') AS f3,
           max(edges) FILTER (WHERE feature = 'score') AS score
    FROM (
        SELECT model_version, feature,
               ARRAY(SELECT e::float8
                     FROM jsonb_array_elements_text(profile -> 'edges') WITH ORDINALITY AS t (e, i)
                     ORDER BY i) AS edges
        FROM profiled
    ) AS per_feature
    GROUP BY model_version
),
interval_rows AS (
    SELECT p.model_version,
           CASE WHEN abs(p.y_hat) <= %(max_measured)s::float8 AND abs(l.y_true) <= %(max_measured)s::float8
                THEN p.y_hat - l.y_true END AS error,
           l.y_true,
           width_bucket(d.f1, e.f1) AS b_f1,
           width_bucket(d.f2, e.f2) AS b_f2,
           width_bucket(d.f3, e.f3) AS b_f3,
           width_bucket(p.y_hat, e.score) AS b_score
    FROM processed_data AS d
    JOIN predictions AS p
        ON p.interval_start = %(start)s AND p.event_id = d.event_id
    LEFT JOIN labels AS l
        ON l.event_id = d.event_id AND l.interval_start = %(start)s
    LEFT JOIN edges AS e
        ON e.model_version = p.model_version
    WHERE d.interval_start = %(start)s AND d.interval_end = %(end)s
),
-- one pass over the interval's rows: a group per version and combination of the four bins (at most
-- (bins + 1)^4 small groups), summed up per version and per bin of each feature below
cells AS (
    SELECT model_version, b_f1, b_f2, b_f3, b_score,
           count(*) AS n,
           count(y_true) AS n_labeled,
           count(y_true) - count(error) AS n_unmeasured,
           sum(abs(error)) AS abs_error,
           sum(error * error) AS squared_error,
           sum(error) AS error
    FROM interval_rows
    GROUP BY model_version, b_f1, b_f2, b_f3, b_score
),
-- grouping bits (b_f1, b_f2, b_f3, b_score), 1 = not grouped: 15 per version, 7 f1, 11 f2, 13 f3, 14 score
grouped AS MATERIALIZED (
    SELECT model_version,
           GROUPING(b_f1, b_f2, b_f3, b_score) AS grouping_bits,
           coalesce(b_f1, b_f2, b_f3, b_score) AS bin,
           sum(n)::bigint AS n,
           sum(n_labeled)::bigint AS n_labeled,
           sum(n_unmeasured)::bigint AS n_unmeasured,
           sum(abs_error) / nullif(sum(n_labeled), 0) AS mae,
           sqrt(sum(squared_error) / nullif(sum(n_labeled), 0)) AS rmse,
           sum(error) / nullif(sum(n_labeled), 0) AS bias
    FROM cells
    GROUP BY GROUPING SETS (
        (model_version), (model_version, b_f1), (model_version, b_f2), (model_version, b_f3),
        (model_version, b_score)
    )
),
performance AS (
    INSERT INTO model_performance (interval_start, interval_end, model_version, n_predictions, n_labeled,
                                   mae, rmse, bias, problem)
    SELECT %(start)s, %(end)s, model_version, n, n_labeled,
           CASE WHEN n_unmeasured = 0 THEN mae END, CASE WHEN n_unmeasured = 0 THEN rmse END,
           CASE WHEN n_unmeasured = 0 THEN bias END,
           CASE WHEN n_unmeasured > 0 THEN
               format('%%s labelled prediction(s) with a prediction or label of magnitude above %%s: '
                      'no error figures (see ETLML_MAX_ABS_VALUE)', n_unmeasured, %(max_measured_text)s::text)
           END
    FROM grouped
    WHERE grouping_bits = 15
),
counts AS (
    SELECT g.model_version, f.feature, g.bin, g.n
    FROM grouped AS g
    JOIN (VALUES (7, 'f1'), (11, 'f2'), (13, 'f3'), (14, 'score')) AS f (grouping_bits, feature)
        USING (grouping_bits)
    WHERE g.model_version IN (SELECT model_version FROM edges)
),
totals AS (
    SELECT model_version, feature, sum(n)::bigint AS n,
           coalesce(sum(n) FILTER (WHERE bin IS NOT NULL), 0)::bigint AS present
    FROM counts
    GROUP BY model_version, feature
),
expected AS (
    SELECT p.model_version, p.feature, (x.i - 1)::int AS bin, x.share::float8 AS share
    FROM profiled AS p
    CROSS JOIN LATERAL jsonb_array_elements_text(p.profile -> 'expected') WITH ORDINALITY AS x (share, i)
    WHERE p.model_version IN (SELECT model_version FROM totals)
),
psi AS (
    SELECT x.model_version, x.feature,
           sum((greatest(s.actual, %(share_floor)s) - greatest(x.share, %(share_floor)s))
               * ln(greatest(s.actual, %(share_floor)s) / greatest(x.share, %(share_floor)s))) AS psi
    FROM expected AS x
    JOIN totals AS t USING (model_version, feature)
    LEFT JOIN counts AS c
        ON c.model_version = x.model_version AND c.feature = x.feature AND c.bin = x.bin
    CROSS JOIN LATERAL (SELECT coalesce(c.n, 0)::float8 / nullif(t.present, 0) AS actual) AS s
    GROUP BY x.model_version, x.feature
)
INSERT INTO feature_drift (interval_start, interval_end, model_version, feature, n, psi, missing_share, status)
SELECT %(start)s, %(end)s, t.model_version, t.feature, t.n, s.psi,
       (t.n - t.present)::float8 / t.n,
       CASE WHEN s.psi IS NULL OR s.psi >= %(psi_alert)s THEN 'alert'
            WHEN s.psi >= %(psi_warn)s THEN 'warn'
            ELSE 'ok' END
FROM totals AS t
JOIN psi AS p USING (model_version, feature)
CROSS JOIN LATERAL (SELECT CASE WHEN t.present > 0 THEN p.psi END AS psi) AS s
RETURNING model_version, feature, n, psi, missing_share, status;
