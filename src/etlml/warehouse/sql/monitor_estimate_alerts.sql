-- The versions whose estimated MAE of an interval is above its threshold now: a recompute notifies
-- only the estimate alerts that were not there before it.
SELECT model_version FROM model_performance WHERE interval_start = %(start)s AND estimate_alert;
