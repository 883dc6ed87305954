-- The etlml page: PSI and status of each feature, interval and model version within the window.
SELECT interval_start, interval_end, model_version, feature, n, psi, missing_share, status
FROM feature_drift
WHERE interval_start >= now() - %(window)s
ORDER BY interval_start, model_version, feature;
