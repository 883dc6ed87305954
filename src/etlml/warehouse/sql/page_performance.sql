-- The etlml page: realized accuracy of each model version on each interval within the window, and the
-- MAE its error estimator estimated there (with its band and threshold), if it has one.
SELECT interval_start, interval_end, model_version, n_predictions, n_labeled, mae, rmse, bias,
       estimated_mae, estimated_mae_low, estimated_mae_high, estimate_threshold, estimate_alert
FROM model_performance
WHERE interval_start >= now() - %(window)s
ORDER BY model_version, interval_start;
