INSERT INTO model_versions (model_version, kind, params, feature_stats, artifact_uri, artifact_sha256, description)
VALUES (%(model_version)s, %(kind)s, %(params)s, %(feature_stats)s, %(artifact_uri)s, %(artifact_sha256)s,
        %(description)s)
ON CONFLICT (model_version) DO NOTHING;
