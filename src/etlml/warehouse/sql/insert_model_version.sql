INSERT INTO model_versions (model_version, kind, params, feature_stats, artifact_uri, artifact_sha256, description,
                            reference_profile, training_from, training_to, validation_metrics)
VALUES (%(model_version)s, %(kind)s, %(params)s, %(feature_stats)s, %(artifact_uri)s, %(artifact_sha256)s,
        %(description)s, %(reference_profile)s, %(training_from)s, %(training_to)s, %(validation_metrics)s)
ON CONFLICT (model_version) DO NOTHING;
