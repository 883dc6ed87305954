-- Store (or replace) a version's error estimator.
INSERT INTO error_estimators AS e (model_version, artifact_uri, artifact_sha256, n, reference_mae,
                                   reference_abs_error_std, fitted_on, window_from, window_to, fitted_by)
VALUES (%(model_version)s, %(artifact_uri)s, %(artifact_sha256)s, %(n)s, %(reference_mae)s,
        %(reference_abs_error_std)s, %(fitted_on)s, %(window_from)s, %(window_to)s, %(fitted_by)s)
ON CONFLICT (model_version) DO UPDATE SET
    artifact_uri = EXCLUDED.artifact_uri,
    artifact_sha256 = EXCLUDED.artifact_sha256,
    n = EXCLUDED.n,
    reference_mae = EXCLUDED.reference_mae,
    reference_abs_error_std = EXCLUDED.reference_abs_error_std,
    fitted_on = EXCLUDED.fitted_on,
    window_from = EXCLUDED.window_from,
    window_to = EXCLUDED.window_to,
    fitted_by = EXCLUDED.fitted_by,
    fitted_at = now();
