"""Monitoring: realized accuracy from ground truth and input drift against reference profiles, per
interval and model version (DAG ``30_monitor``)."""
