-- The (model version, feature) pairs of an interval whose drift status is alert now: a recompute
-- notifies only the alerts that were not there before it.
SELECT model_version, feature FROM feature_drift WHERE interval_start = %(start)s AND status = 'alert';
