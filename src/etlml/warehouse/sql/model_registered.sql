SELECT EXISTS (SELECT 1 FROM model_versions WHERE model_version = %(model_version)s);
