-- Remove one interval's monitoring rows before they are computed again (same transaction).
WITH performance AS (
    DELETE FROM model_performance WHERE interval_start = %(start)s
)
DELETE FROM feature_drift WHERE interval_start = %(start)s;
