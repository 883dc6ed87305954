SELECT kind, params, feature_stats, artifact_uri, artifact_sha256
FROM model_versions WHERE model_version = %(model_version)s;
