INSERT INTO model_comparisons (champion, candidate, window_from, window_to, n, champion_mae, candidate_mae,
                               champion_rmse, candidate_rmse, mae_diff, ci_low, ci_high, bootstrap_samples,
                               seed, actor)
VALUES (%(champion)s, %(candidate)s, %(window_from)s, %(window_to)s, %(n)s, %(champion_mae)s,
        %(candidate_mae)s, %(champion_rmse)s, %(candidate_rmse)s, %(mae_diff)s, %(ci_low)s, %(ci_high)s,
        %(samples)s, %(seed)s, %(actor)s)
RETURNING comparison_id, computed_at;
