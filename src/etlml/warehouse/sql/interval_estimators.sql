-- The error estimators of the versions with predictions in one interval.
SELECT e.model_version, e.artifact_uri, e.artifact_sha256, e.reference_mae, e.reference_abs_error_std
FROM error_estimators AS e
WHERE e.model_version IN (SELECT model_version FROM model_performance WHERE interval_start = %(start)s)
ORDER BY e.model_version;
