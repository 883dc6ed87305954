-- The etlml page: the champion and its score's reference profile (NULL when it has none).
SELECT v.model_version, v.reference_profile -> 'score'
FROM model_aliases AS a
JOIN model_versions AS v USING (model_version)
WHERE a.alias = 'champion';
