-- The etlml page: the champion and the challenger, with what each version was fitted on.
SELECT a.alias, a.model_version, a.assigned_at, v.kind, v.description, v.training_from, v.training_to,
       v.validation_metrics
FROM model_aliases AS a
JOIN model_versions AS v USING (model_version)
ORDER BY a.alias;
