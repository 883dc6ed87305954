-- One interval's realized accuracy per model version, as the last computation stored it.
SELECT model_version, n_predictions, n_labeled, mae, rmse, bias, problem
FROM model_performance
WHERE interval_start = %(start)s
ORDER BY model_version;
