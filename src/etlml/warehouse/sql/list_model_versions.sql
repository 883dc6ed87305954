SELECT v.model_version, v.kind, v.created_at, v.description,
       coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL), '{}') AS aliases
FROM model_versions v LEFT JOIN model_aliases a USING (model_version)
GROUP BY v.model_version ORDER BY v.created_at, v.model_version;
