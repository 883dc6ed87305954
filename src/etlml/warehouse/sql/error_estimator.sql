-- A version's error estimator, if it has one.
SELECT model_version, artifact_uri, artifact_sha256, n, reference_mae, reference_abs_error_std, fitted_on,
       window_from, window_to, fitted_by, fitted_at
FROM error_estimators
WHERE model_version = %(model_version)s;
