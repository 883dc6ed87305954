SELECT v.model_version, v.kind, v.params, v.feature_stats, v.artifact_uri, v.artifact_sha256, v.description,
       v.created_at,
       coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), '{}') AS aliases,
       v.training_from, v.training_to, v.validation_metrics
FROM model_versions v LEFT JOIN model_aliases a USING (model_version)
WHERE v.model_version = %(model_version)s
GROUP BY v.model_version;
