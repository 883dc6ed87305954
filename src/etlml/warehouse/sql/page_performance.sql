-- The etlml page: realized accuracy of each model version on each interval within the window.
SELECT interval_start, interval_end, model_version, n_predictions, n_labeled, mae, rmse, bias
FROM model_performance
WHERE interval_start >= now() - %(window)s
ORDER BY model_version, interval_start;
