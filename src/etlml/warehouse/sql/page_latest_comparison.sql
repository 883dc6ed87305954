-- The etlml page: the latest stored `etlml models compare` (the evidence a promotion would act on).
SELECT champion, candidate, window_from, window_to, n, champion_mae, candidate_mae, champion_rmse,
       candidate_rmse, mae_diff, ci_low, ci_high, bootstrap_samples, seed, actor, computed_at
FROM model_comparisons
ORDER BY computed_at DESC, comparison_id DESC
LIMIT 1;
