-- One version's estimated MAE on one interval, beside its realized figures (same transaction).
UPDATE model_performance
SET estimated_mae = %(mae)s, estimated_mae_low = %(low)s, estimated_mae_high = %(high)s,
    estimate_threshold = %(threshold)s, estimate_alert = %(alert)s
WHERE interval_start = %(start)s AND model_version = %(version)s;
