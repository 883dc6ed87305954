SELECT kind, params, feature_stats FROM model_versions WHERE model_version = %(model_version)s;
